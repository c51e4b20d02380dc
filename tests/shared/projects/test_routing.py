"""Routing: the first project in file order whose every condition holds."""

from __future__ import annotations

import pytest

from relay_shared.projects import Arrival, Router
from relay_shared.projects.schema import Project

SCP_CT1 = Arrival("scp", calling_ae="CT_ROOM1")
CHEST_CT = {"Modality": ("CT",), "StudyDescription": ("CT Chest w/o",),
            "SeriesDescription": ("Axial 1.25",), "SliceThickness": ("1.25",),
            "ImageType": ("ORIGINAL", "PRIMARY", "AXIAL")}


def router(*projects: dict) -> Router:
    return Router([Project.model_validate({"destinations": ["d"], **p}) for p in projects])


LUNG = {"name": "lung", "match": {"source": ["scp"], "calling_ae": ["CT_ROOM1"], "header": {
    "Modality": {"in": ["CT"]}, "StudyDescription": {"regex": "(?i)chest|thorax"},
    "SeriesDescription": {"not_regex": "(?i)scout|localizer"},
    "SliceThickness": {"max": 5}}}}
EVERYTHING = {"name": "rest", "match": {}}


def test_the_first_project_whose_conditions_all_hold_takes_the_series() -> None:
    assert router(LUNG, EVERYTHING).route(SCP_CT1, CHEST_CT) == "lung"


@pytest.mark.parametrize(("arrival", "header", "failed"), [
    (Arrival("folder"), CHEST_CT, "source in ['scp']"),
    (Arrival("scp", calling_ae="MR_ROOM"), CHEST_CT, "calling_ae in ['CT_ROOM1']"),
    (SCP_CT1, {**CHEST_CT, "Modality": ("MR",)}, "Modality in ['CT']"),
    (SCP_CT1, {**CHEST_CT, "StudyDescription": ("Head",)},
     "StudyDescription regex '(?i)chest|thorax'"),
    (SCP_CT1, {**CHEST_CT, "SeriesDescription": ("Scout 1",)},
     "SeriesDescription not_regex '(?i)scout|localizer'"),
    (SCP_CT1, {**CHEST_CT, "SliceThickness": ("7.5",)}, "SliceThickness max 5"),
    (SCP_CT1, {k: v for k, v in CHEST_CT.items() if k != "SliceThickness"},
     "SliceThickness max 5"),
    (SCP_CT1, {**CHEST_CT, "SliceThickness": ("thin",)}, "SliceThickness max 5"),
])
def test_a_failing_condition_passes_the_series_on_and_is_named(
        arrival: Arrival, header: dict, failed: str) -> None:
    decision = router(LUNG, EVERYTHING).explain(arrival, header)
    assert decision.project == "rest"
    assert decision.failed == (("lung", failed),)


def test_no_project_taking_a_series_routes_it_nowhere() -> None:
    assert router(LUNG).route(Arrival("folder"), CHEST_CT) is None


def test_an_empty_match_takes_everything() -> None:
    assert router(EVERYTHING).route(Arrival("follow"), {}) == "rest"


def test_incoming_subdir_matches_the_folder_a_delivery_was_put_in() -> None:
    rules = router({"name": "lung", "match": {"incoming_subdir": "lung"}}, EVERYTHING)
    assert rules.route(Arrival("folder", incoming_subdir="lung"), {}) == "lung"
    assert rules.route(Arrival("folder", incoming_subdir="neuro"), {}) == "rest"
    assert rules.route(Arrival("folder"), {}) == "rest"


@pytest.mark.parametrize(("condition", "values", "holds"), [
    ({"equals": "CT"}, ("CT",), True),
    ({"equals": "CT"}, ("ct",), False),  # exact: (?i) in a regex for any case
    ({"equals": 5}, ("5.0",), True),  # a number in the file compares as a number
    ({"in": ["AXIAL", "CORONAL"]}, ("ORIGINAL", "PRIMARY", "AXIAL"), True),  # any value
    ({"equals": "ORIGINAL\\PRIMARY\\AXIAL"}, ("ORIGINAL", "PRIMARY", "AXIAL"), True),
    ({"regex": "^ORIGINAL\\\\PRIMARY"}, ("ORIGINAL", "PRIMARY", "AXIAL"), True),
    ({"min": 1, "max": 2}, ("1.5",), True),
    ({"min": 1}, ("0.5", "1.5"), False),  # every value must be in range
    ({"present": False}, (), True),
    ({"present": False}, ("x",), False),
    ({"present": True}, ("x",), True),
    ({"not_regex": "scout"}, (), True),  # nothing to object to
    ({"regex": "."}, (), False),
])
def test_conditions_read_dicom_values(condition: dict, values: tuple, holds: bool) -> None:
    rules = router({"name": "p", "match": {"header": {"ImageType": condition}}})
    header = {"ImageType": values} if values else {}
    assert (rules.route(Arrival("scp"), header) == "p") is holds


def test_a_projects_conditions_are_named_cheapest_first() -> None:
    assert router(LUNG).conditions("lung") == [
        "source in ['scp']", "calling_ae in ['CT_ROOM1']", "Modality in ['CT']",
        "SliceThickness max 5", "StudyDescription regex '(?i)chest|thorax'",
        "SeriesDescription not_regex '(?i)scout|localizer'"]


def test_the_router_knows_which_attributes_it_reads() -> None:
    assert router(LUNG).keywords == {"Modality", "StudyDescription", "SeriesDescription",
                                     "SliceThickness"}
