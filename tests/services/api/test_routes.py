"""What each resource answers, on a seeded database."""

from __future__ import annotations

import asyncio
import json

from relay_shared.runtime import Runtime
from tests.services.api.seed import Seeded, client


def test_series_filters(rt: Runtime, seeded: Seeded) -> None:
    api = client(rt)

    def ids(query: str) -> set[int]:
        return {s["id"] for s in api.get(f"/api/v1/series?{query}").json()["items"]}

    assert ids("status=FAILED") == {seeded.failed}
    assert ids("patient_pseudonym=PSEUDO-BBBB") == {seeded.quarantined, seeded.processing,
                                                   seeded.partial}
    assert ids("modality=mr") == {seeded.quarantined, seeded.processing}
    assert ids("modality=CT&patient_pseudonym=PSEUDO-AAAA&status=DONE") == {seeded.done}
    assert seeded.done not in ids("created_from=" + _hours_ago(2))
    assert ids("created_to=" + _hours_ago(2)) == {seeded.done}
    assert ids("created_from=2000-01-01T00:00:00%2B05:00") == set(vars(seeded).values())


def _hours_ago(hours: int) -> str:
    from datetime import UTC, datetime, timedelta
    return (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S")


def test_series_sort_and_pages(rt: Runtime, seeded: Seeded) -> None:
    api = client(rt)
    newest_first = [s["id"] for s in api.get("/api/v1/series").json()["items"]]
    assert newest_first == sorted(newest_first, reverse=True)
    assert [s["id"] for s in api.get("/api/v1/series?sort=id").json()["items"]] \
        == sorted(newest_first)
    by_created = api.get("/api/v1/series?sort=created_at").json()["items"]
    assert by_created[0]["id"] == seeded.done  # created a day earlier
    pages = [api.get(f"/api/v1/series?limit=2&offset={o}&sort=status").json()
             for o in (0, 2, 4)]
    assert [p["total"] for p in pages] == [5, 5, 5]
    seen = [s["id"] for p in pages for s in p["items"]]
    assert sorted(seen) == sorted(newest_first)  # no row skipped or repeated
    assert api.get("/api/v1/series?sort=nonsense").status_code == 422


def test_series_summary_has_progress(rt: Runtime, seeded: Seeded) -> None:
    items = {s["id"]: s for s in client(rt).get("/api/v1/series").json()["items"]}
    assert items[seeded.done]["progress"] == 1.0
    assert items[seeded.processing]["progress"] == 0.25
    assert 0 < items[seeded.failed]["progress"] <= 1
    assert items[seeded.partial]["images_by_status"] == {"DONE": 3, "FAILED": 1}


def test_one_series_has_images_failures_and_events(rt: Runtime, seeded: Seeded) -> None:
    detail = client(rt).get(f"/api/v1/series/{seeded.partial}").json()
    assert [i["status"] for i in detail["images"]] == ["DONE"] * 3 + ["FAILED"]
    assert detail["failures"] == [{"image_id": detail["images"][3]["id"], "status": "FAILED",
                                   "reason": "file ends early", "pixel_gate": None,
                                   "status_text": "Failed — will not retry",
                                   "code": "image.failed"}]
    assert detail["status_text"] == "Done — 1 image(s) not sent"
    assert [e["kind"] for e in detail["events"]] == ["received", "done"]
    assert detail["patient_pseudonym"] == "PSEUDO-BBBB"


def test_missing_things_are_404_problems(rt: Runtime, seeded: Seeded) -> None:
    api = client(rt)
    for path in ("/api/v1/series/999", "/api/v1/images/999", "/api/v1/nothing-here"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    assert api.get("/api/v1/series/0").status_code == 422
    assert api.get("/api/v1/series/99999999999999999999").status_code == 422
    assert client(rt, "operator").delete("/api/v1/series").status_code == 405


def test_images_resource(rt: Runtime, seeded: Seeded) -> None:
    api = client(rt)
    page = api.get(f"/api/v1/images?series_id={seeded.processing}").json()
    assert page["total"] == 5 and {i["status"] for i in page["items"]} == {"NEW"}
    failed = api.get("/api/v1/images?status=FAILED").json()["items"]
    assert [i["series_id"] for i in failed] == [seeded.partial]
    one = api.get(f"/api/v1/images/{failed[0]['id']}").json()
    assert one["reason"] == "file ends early"


def test_failures_list_failed_series_and_failed_images(rt: Runtime, seeded: Seeded) -> None:
    items = client(rt).get("/api/v1/failures").json()["items"]
    by_id = {f["series_id"]: f for f in items}
    assert set(by_id) == {seeded.failed, seeded.quarantined, seeded.partial}
    assert by_id[seeded.failed]["error"] == "SendError: destination refused"
    assert by_id[seeded.partial]["failed_images"][0]["reason"] == "file ends early"
    assert len(by_id[seeded.quarantined]["failed_images"]) == 2


def test_stats(rt: Runtime, seeded: Seeded) -> None:
    asyncio.run(rt.bus.publish(rt.settings.deid_queue, _message(seeded.processing)))
    stats = client(rt).get("/api/v1/stats").json()
    assert stats["series_by_status"]["DONE"] == 2
    assert stats["series_by_status"]["FAILED"] == 1
    assert stats["images_by_status"]["DONE"] == 7
    assert stats["in_flight"] == 1
    assert stats["last_hour"]["series_done"] == 2
    assert stats["last_hour"]["series_failed"] == 1
    assert stats["last_hour"]["images_done"] == 7
    assert stats["queues"] == {"relay.deid": 1, "relay.send": 0}


def _message(series_id: int):  # type: ignore[no-untyped-def]
    from relay_shared.messages import SeriesMessage
    return SeriesMessage(series_id=series_id)


def test_retry_queues_the_failed_stage(rt: Runtime, seeded: Seeded) -> None:
    api = client(rt, "operator")
    response = api.post(f"/api/v1/series/{seeded.failed}/retry")
    assert response.status_code == 202
    assert response.json() == {"series_id": seeded.failed, "stage": "send",
                               "status": "DONEPROCESSING"}
    assert asyncio.run(rt.bus.queue_depths())[rt.settings.send_queue] == 1
    again = api.post(f"/api/v1/series/{seeded.failed}/retry")
    assert again.status_code == 409
    assert "DONEPROCESSING" in again.json()["detail"]
    events = api.get(f"/api/v1/series/{seeded.failed}").json()["events"]
    assert events[-1]["kind"] == "retry"


def test_admin_sees_the_mapping_and_audit(rt: Runtime, seeded: Seeded) -> None:
    api = client(rt, "admin")
    mapping = api.get("/api/v1/admin/identifiers").json()["items"]
    assert mapping[0]["series_id"] == seeded.done and mapping[0]["date_shift_days"] == -17
    audit = api.get(f"/api/v1/admin/series/{seeded.partial}/audit").json()
    assert audit["audit"]["profile"] == "basic"
    assert audit["quarantined_files"] == [f"/quarantine/series-{seeded.partial}/IM3.dcm"]
    events = api.get(f"/api/v1/admin/events?series_id={seeded.failed}&kind=failed").json()
    assert [e["kind"] for e in events["items"]] == ["failed"] and events["items"][0]["process"]


def test_a_reader_never_gets_the_mapping(rt: Runtime, seeded: Seeded) -> None:
    api = client(rt, "reader")
    texts = [api.get(path).text for path in (
        "/api/v1/series", f"/api/v1/series/{seeded.done}", f"/api/v1/series/{seeded.partial}",
        "/api/v1/images", "/api/v1/studies", "/api/v1/failures", "/api/v1/stats")]
    for text in texts:
        body = json.loads(text)
        assert body
        # The quarantine's files by their path; the word itself names a status.
        for secret in ("date_shift_days", "quarantine_path", "/quarantine/", "key_id", "audit",
                       "trace"):
            assert secret not in text, secret


def test_metrics_reports_database_counts_and_queues(rt: Runtime, seeded: Seeded) -> None:
    text = client(rt, None).get("/metrics").text
    assert 'relay_series{status="DONE"} 2.0' in text
    assert 'relay_images{status="FAILED"} 1.0' in text
    assert 'relay_queue_depth{queue="relay.deid"}' in text


def test_openapi_documents_models_and_problems(rt: Runtime) -> None:
    schema = client(rt, None).get("/api/v1/openapi.json").json()
    get_series = schema["paths"]["/api/v1/series/{series_id}"]["get"]
    assert get_series["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/SeriesDetail")
    assert "application/problem+json" in get_series["responses"]["401"]["content"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
