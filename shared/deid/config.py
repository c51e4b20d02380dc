"""What the operator chose: profile options, recipe, safe private list."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from .recipe import DeidConfigError, Recipe, SafePrivate, load_recipe, load_safe_private_list
from .table import OPTIONS

CONFLICTING = frozenset({"rtnLongFullDatesOpt", "rtnLongModifDatesOpt"})


@cache
def default_safe_private() -> frozenset[SafePrivate]:
    text = (resources.files("relay_shared.deid") / "data" / "safe_private.yaml").read_text()
    return frozenset(load_safe_private_list(text, "safe_private.yaml"))


@dataclass(frozen=True)
class DeidConfig:
    options: frozenset[str] = frozenset()
    recipe: Recipe | None = None
    safe_private: frozenset[SafePrivate] = field(default_factory=default_safe_private)
    # Coding scheme designators the site calls local, besides 99* and L (see codes.py).
    local_coding_schemes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise DeidConfigError(
                f"unknown de-identification option {unknown[0]!r}; known: {', '.join(OPTIONS)}"
            )
        if self.options >= CONFLICTING:
            raise DeidConfigError(
                "rtnLongFullDatesOpt and rtnLongModifDatesOpt exclude each other: choose one"
            )

    @classmethod
    def from_settings(cls, options: list[str] | str, recipe_path: str | None,
                      local_coding_schemes: Iterable[str] = ()) -> DeidConfig:
        """From the settings' strings: options as a list or comma/space
        separated; the recipe file, if any, is loaded and validated now."""
        if isinstance(options, str):
            options = options.replace(",", " ").split()
        recipe = load_recipe(recipe_path) if recipe_path else None
        safe = default_safe_private()
        if recipe is not None:
            safe = safe | frozenset(recipe.safe_private)
        return cls(options=frozenset(o.strip() for o in options if o.strip()),
                   recipe=recipe, safe_private=safe,
                   local_coding_schemes=frozenset(s.strip().upper() for s in local_coding_schemes
                                                  if s.strip()))

    @property
    def shifts_dates(self) -> bool:
        return "rtnLongModifDatesOpt" in self.options

    @property
    def keeps_dates(self) -> bool:
        return "rtnLongFullDatesOpt" in self.options
