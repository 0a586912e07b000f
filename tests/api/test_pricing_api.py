"""The pricing endpoints end to end: the signed API on a catalogue synced from the feed emulator, the repricing
orchestration on the local host, every price compared with RuleSet.price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from pricing_api import (
    PricingApi,
    assert_priced_under,
    pricing_api_fixture,  # noqa: F401 - the fixture `pricing_api`
    wait_for_job,
)

from caratflow_client import CaratflowClient
from shared.db.rows import one
from shared.pricing import repricing
from shared.pricing.audit import Actor
from shared.pricing.quotes import Stone
from shared.pricing.repository import rule_set
from shared.pricing.rules import PricingRule

PRICES = """SELECT diamond_id, price_cents, price_per_carat_cents, pricing_version, pricing_rule_id
            FROM diamonds ORDER BY diamond_id"""
NEW_RULES: list[dict[str, Any]] = [
    {"priority": 10, "name": "round GIA", "shapes": ["ROUND"], "labs": ["GIA"], "markup_percent": "18",
     "rounding": "charm", "rounding_step_cents": 1000, "rounding_ending_cents": 900},
    {"priority": 20, "name": "clean", "clarities": ["FL", "IF", "VVS1", "VVS2"], "markup_percent": "33",
     "floor_cents": 25000},
    {"priority": 1000, "name": "everything else", "markup_percent": "21.5", "rounding": "dollar"},
]  # fmt: skip


def refused(call: Any, *args: Any, **kwargs: Any) -> httpx.Response:
    with pytest.raises(httpx.HTTPStatusError) as caught:
        call(*args, **kwargs)
    response = caught.value.response
    assert response.headers["content-type"] == "application/problem+json"
    return response


@pytest.mark.slow
def test_a_draft_is_edited_previewed_activated_and_reverted_through_the_api(pricing_api: PricingApi) -> None:
    api, conn = pricing_api.pricing, pricing_api.conn
    original = conn.execute(PRICES).fetchall()
    (active,) = api.pricing_sets(status="active")
    assert active["pricing_version"] == 1

    draft = api.copy_pricing_set(1, note="spring")
    version = draft["pricing_version"]
    assert (draft["status"], draft["copied_from"], draft["note"]) == ("draft", 1, "spring")
    edited = api.edit_pricing_set(version, {"note": "spring", "rules": NEW_RULES}, revision=draft["revision"])
    assert [rule["name"] for rule in edited["rules"]] == ["round GIA", "clean", "everything else"]
    assert refused(api.edit_pricing_set, version, {"rules": NEW_RULES}, revision=draft["revision"]).status_code == 412
    assert api.validate_pricing_set(version)["valid"] is True

    preview = api.preview_pricing_set(version, largest=5)
    listed = one(conn.execute("SELECT count(*) FROM diamonds WHERE delisted_at IS NULL").fetchone())[0]
    assert preview["total"]["stones"] == listed
    assert preview["total"]["changed"] > 0
    assert len(preview["largest"]) == 5

    assert refused(api.activate_pricing_set, version, " ").status_code == 400  # a comment says why
    assert refused(api.revert_pricing_set, version, "wrong route").status_code == 409  # a draft is activated
    job = api.activate_pricing_set(version, "new season")
    assert (job["target_version"], job["kind"], job["actor"]) == (
        version,
        "activate",
        f"api_key:pricer:{pricing_api.key_id}",
    )
    events = list(api.repricing_job_events(job["job_id"], interval=0.1))
    assert events[-1] == ("end", {"job_id": job["job_id"], "status": "succeeded"})
    done = wait_for_job(api, job["job_id"])
    assert done["stones"] == done["total"] == assert_priced_under(conn, version) > 1000
    assert conn.execute(PRICES).fetchall() != original

    # A quote is the price the job gave: of a catalogue stone, and of the same stone given whole.
    diamond_id, price = one(
        conn.execute("SELECT diamond_id::text, price_cents FROM diamonds WHERE delisted_at IS NULL LIMIT 1").fetchone()
    )
    quoted = api.quote(diamond_id=diamond_id)
    assert (quoted["pricing_version"], quoted["price_cents"], quoted["listed"]["price_cents"]) == (
        version,
        price,
        price,
    )
    again = api.quote(stone=quoted["stone"], pricing_version=version)
    assert again["price_cents"] == price
    under_one = api.quote(stone=quoted["stone"], pricing_version=1)
    assert under_one["price_cents"] == rule_set(conn, 1).price(Stone.model_validate(quoted["stone"])).price_cents

    back = api.revert_pricing_set(1, "back to the defaults")
    assert wait_for_job(api, back["job_id"])["status"] == "succeeded"
    assert conn.execute(PRICES).fetchall() == original  # every price exactly as under version 1
    assert [s["status"] for s in api.pricing_sets()] == ["retired", "active"]

    trail = api.pricing_audit()
    assert [entry["action"] for entry in reversed(trail)] == [
        "copy", "edit", "activate", "job_finished", "revert", "job_finished"
    ]  # fmt: skip
    by_key = {"kind": "api_key", "name": "pricer", "key_id": pricing_api.key_id}
    assert all(entry["actor"] == by_key for entry in trail if not entry["action"].startswith("job_"))
    assert {e["action"]: e["comment"] for e in trail if e["comment"]} == {
        "activate": "new season", "revert": "back to the defaults"
    }  # fmt: skip
    assert trail[0]["outcome"]["stones_repriced"] > 0
    assert [e["action"] for e in api.pricing_audit(version=1, action="revert")] == ["revert"]
    assert api.pricing_audit(actor="someone-else") == []


@pytest.mark.slow
def test_an_unpriced_stone_type_is_422_and_a_second_activation_409(pricing_api: PricingApi) -> None:
    api, conn = pricing_api.pricing, pricing_api.conn
    natural_only = {"rules": [{"priority": 1, "name": "natural", "stone_type": "natural", "markup_percent": "20"}]}
    draft = api.create_pricing_set(natural_only)["pricing_version"]
    validation = api.validate_pricing_set(draft)
    assert validation["valid"] is False
    response = refused(api.activate_pricing_set, draft, "half a set")
    assert response.status_code == 422
    findings = response.json()["findings"]
    assert {(f["code"], f["example"]["stone_type"]) for f in findings} == {
        ("unpriced_stones", "lab_grown"), ("unpriced_stones", "fancy")
    }  # fmt: skip

    # A job begun elsewhere and not yet started: a second activation waits for it to end.
    valid = api.copy_pricing_set(1)["pricing_version"]
    pending = repricing.begin(conn, valid, Actor.operator("alice"), "first")
    assert refused(api.activate_pricing_set, api.copy_pricing_set(1)["pricing_version"], "second").status_code == 409
    assert refused(api.edit_pricing_set, valid, natural_only).status_code == 409  # being activated
    cancelled = api.cancel_repricing_job(str(pending.job_id))
    assert cancelled["status"] == "cancelled"  # a pending job is cancelled at once
    assert refused(api.cancel_repricing_job, str(pending.job_id)).status_code == 409
    assert refused(api.resume_repricing_job, str(pending.job_id)).status_code == 409
    assert api.repricing_jobs()[0]["job_id"] == str(pending.job_id)

    api.delete_pricing_set(draft, comment="never mind")
    assert refused(api.pricing_set, draft).status_code == 404
    assert refused(api.delete_pricing_set, 1).status_code == 409  # the active set is never deleted
    assert refused(api.quote, stone={"feed": "x", "shape": "ROUND", "carats": "1", "cost_cents": 1},
                   pricing_version=draft).status_code == 404  # fmt: skip
    assert_priced_under(conn, 1)


@pytest.mark.slow
def test_a_failed_job_is_resumed_through_the_api(pricing_api: PricingApi) -> None:
    api, conn = pricing_api.pricing, pricing_api.conn
    version = api.create_pricing_set({"rules": NEW_RULES})["pricing_version"]
    job = repricing.begin(conn, version, Actor.operator("alice"), "to fail")
    repricing.start(conn, job.job_id)
    repricing.fail(conn, job.job_id, "connection lost")  # as the orchestration does when an activity gives up
    failed = api.repricing_job(str(job.job_id))
    assert (failed["status"], failed["failed_in"], failed["error"]) == ("failed", "running", "connection lost")

    resumed = api.resume_repricing_job(str(job.job_id))
    assert resumed["status"] == "running"
    assert wait_for_job(api, str(job.job_id))["status"] == "succeeded"
    assert_priced_under(conn, version)
    assert refused(api.resume_repricing_job, str(job.job_id)).status_code == 409


def _operations(client: CaratflowClient) -> list[tuple[str, str]]:
    document = client.http.get("/api/openapi.json").json()
    return [
        (method.upper(), path.replace("{version}", "1").replace("{job_id}", "00000000-0000-0000-0000-000000000001"))
        for path, methods in document["paths"].items()
        if path.startswith("/api/v1/pricing")
        for method in methods
    ]


@pytest.mark.slow
def test_search_and_admin_keys_get_403_on_every_pricing_route(pricing_api: PricingApi) -> None:
    operations = _operations(pricing_api.pricing)
    assert len(operations) >= 15
    for client in (pricing_api.search, pricing_api.admin):
        for method, path in operations:
            response = client.http.request(method, path, json={} if method in ("POST", "PUT") else None)
            assert response.status_code == 403, (method, path, response.text)
            assert "'pricing' scope" in response.json()["detail"]
    assert len(pricing_api.pricing.pricing_sets()) == 1
    assert conn_versions(pricing_api) == [1]


def conn_versions(api: PricingApi) -> list[int]:
    return [row[0] for row in api.conn.execute("SELECT pricing_version FROM pricing_rule_sets ORDER BY 1")]


def test_a_rule_model_with_the_api_bounds_is_still_a_pricing_rule() -> None:
    from api.routes.pricing_models import Rule

    rule = Rule(priority=1, name="x", markup_percent=Decimal(5))
    assert isinstance(rule, PricingRule)
    with pytest.raises(ValueError, match="extra"):
        Rule.model_validate({"priority": 1, "name": "x", "colour": ["D"]})
