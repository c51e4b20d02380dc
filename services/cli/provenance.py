"""`relay verify` and `relay signing-key`: the signed manifests of delivered series."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

signing_key_app = typer.Typer(help="The key manifests are signed with (RELAY_SIGNING_KEY).",
                              no_args_is_help=True)


def verify(
    manifest: Annotated[Path, typer.Argument(help="A series.manifest.json", dir_okay=False)],
    files: Annotated[list[Path] | None, typer.Argument(
        help="The files received (default: those beside the manifest)", dir_okay=False)] = None,
    public_key: Annotated[Path | None, typer.Option(
        help="The relay's public key (PEM), from GET /api/v1/signing-key; without it the key "
             "the manifest carries is used", dir_okay=False)] = None,
    key_id: Annotated[str | None, typer.Option(
        help="The key id the signature must be made with")] = None,
) -> None:
    """Check a manifest's signature and every file against it; each failure is named and
    the exit status is 1."""
    from relay_shared.manifest import (
        MANIFEST_NAME,
        ManifestUnreadable,
        objects_as_sent,
        parse_manifest,
    )
    from relay_shared.signing import SigningKeyError, load_public_key

    try:
        document = parse_manifest(manifest.read_bytes())
        trusted = load_public_key(public_key.read_bytes()) if public_key else None
    except (OSError, ManifestUnreadable, SigningKeyError) as exc:
        what = f"{type(exc).__name__}" if isinstance(exc, OSError) else str(exc)
        typer.echo(f"relay: {public_key if isinstance(exc, SigningKeyError) else manifest}: "
                   f"{what}", err=True)
        raise typer.Exit(2) from None
    # Only plain names, beside the manifest: a manifest cannot point the check elsewhere.
    names = [str(i.get("file")) for i in [*document["instances"], *objects_as_sent(document)]
             if isinstance(i, dict)]
    listed = [manifest.parent / name for name in names
              if name == Path(name).name and name not in ("", ".", "..", MANIFEST_NAME)]
    # Those that are there: one that is not is named by the check as listed, not found
    # (a volume in their place stands for every instance).
    present = [p for p in listed if p.is_file()]
    beside = not files and bool(present)
    _report(document, list(files or present), trusted, beside, key_id)


def _report(document: dict[str, Any], files: list[Path], trusted: Ed25519PublicKey | None,
            every: bool, key_id: str | None) -> None:
    from relay_shared.manifest import check_manifest

    report = check_manifest(document, files, trusted, every_instance=every)
    if key_id is not None and report.key_id != key_id:
        report.failures.insert(0, f"signed with key {report.key_id}, not the expected {key_id}")
    for line in report.checked:
        typer.echo(f"ok    {line}")
    for line in report.failures:
        typer.echo(f"FAIL  {line}")
    if report.not_checked:
        typer.echo(f"note  {len(report.not_checked)} instance(s) of the manifest were not "
                   "checked: give their files to check them")
    if trusted is None and key_id is None:
        typer.echo(f"note  checked against the key the manifest carries ({report.key_id}): "
                   "compare it with the relay's GET /api/v1/signing-key, or give --public-key")
    if not report.ok:
        typer.echo(f"manifest NOT verified: {len(report.failures)} problem(s)")
        raise typer.Exit(1)
    typer.echo(f"manifest verified: signature by key {report.key_id}, "
               f"{len(report.checked)} file(s) as listed")


@signing_key_app.command("new")
def new_key(out: Annotated[Path, typer.Option(help="Where to write the private key (PEM)",
                                              dir_okay=False)]) -> None:
    """Make an Ed25519 key for RELAY_SIGNING_KEY; prints its key id and public key."""
    import os

    from relay_shared.signing import load_signing_key, new_private_pem, public_pem

    if out.exists():
        typer.echo(f"relay: {out} exists: a signing key is never overwritten", err=True)
        raise typer.Exit(2)
    pem = new_private_pem()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fp:
        fp.write(pem)
    key = load_signing_key(pem)
    typer.echo(f"key id: {key.key_id}")
    typer.echo(public_pem(key.public), nl=False)


@signing_key_app.command("show")
def show_key() -> None:
    """The key id and public key the relay signs with, from the settings in force."""
    from relay_shared.production import RequiredInProduction
    from relay_shared.settings import SettingsError, load_settings
    from relay_shared.signing import SigningKeyError, public_pem, signing_key_for

    try:
        key = signing_key_for(load_settings())
    except (SettingsError, SigningKeyError, RequiredInProduction) as exc:
        typer.echo(f"relay: {exc}", err=True)
        raise typer.Exit(2) from None
    if key is None:
        typer.echo("relay: manifests are off (RELAY_MANIFESTS=false)", err=True)
        raise typer.Exit(1)
    typer.echo(f"key id: {key.key_id}" + (" (derived from the deid secret: development only)"
                                          if key.derived else ""))
    typer.echo(public_pem(key.public), nl=False)
