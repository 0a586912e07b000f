"""`caratflow pricing ...` through the signed API on a synced catalogue: a draft edited from a YAML file that
`show` printed, validated, previewed, activated and watched to its end, then audited and quoted."""

from __future__ import annotations

import json

import pytest
import yaml
from pricing_api import PricingApi, assert_priced_under, pricing_api_fixture, pricing_cli  # noqa: F401 - a fixture


@pytest.mark.slow
def test_a_draft_from_a_yaml_file_is_activated_and_audited(pricing_api: PricingApi, tmp_path, monkeypatch, capsys):
    def cli(*args: str) -> tuple[int, str, str]:
        return pricing_cli(pricing_api, monkeypatch, capsys, *args)

    code, out, _ = cli("copy", "1", "--note", "from the terminal")
    assert code == 0
    version = json.loads(out)["pricing_version"]
    code, out, _ = cli("show", str(version))
    shown = json.loads(out)
    # The operator edits what `show` printed: one markup changed, a rule for lab-grown stones added.
    (middle,) = [rule for rule in shown["rules"] if rule["name"] == "natural 0.50 to 2 ct"]
    middle["markup_percent"] = "40"
    shown["rules"].insert(0, {"priority": 1, "name": "lab grown", "stone_type": "lab_grown", "markup_percent": 12.5,
                              "rounding": "charm", "rounding_step_cents": 100,
                              "rounding_ending_cents": 99})  # fmt: skip
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump(shown))

    code, out, _ = cli("edit", str(version), str(draft), "--comment", "lab-grown charm")
    assert code == 0
    edited = json.loads(out)
    assert (edited["revision"], edited["rules"][0]["name"]) == (shown["revision"] + 1, "lab grown")
    code, _, err = cli("edit", str(version), str(draft))  # the file's revision is stale now
    assert (code, err.startswith("HTTP 412")) == (1, True)

    assert cli("validate", str(version))[0] == 0
    code, out, _ = cli("preview", str(version), "--largest", "3")
    assert (code, len(json.loads(out)["largest"])) == (0, 3)

    code, out, _ = cli("activate", str(version), "--comment", "spring prices", "--watch")
    assert code == 0
    assert 'end: {"job_id"' in out
    assert '"status": "succeeded"' in out
    assert_priced_under(pricing_api.conn, version)

    code, out, _ = cli("audit", "--pricing-version", str(version), "--action", "activate")
    (entry,) = json.loads(out)
    assert (entry["comment"], entry["actor"]["name"]) == ("spring prices", "pricer")
    code, out, _ = cli("jobs")
    assert json.loads(out)[0]["status"] == "succeeded"

    diamond_id, price = pricing_api.conn.execute(
        "SELECT diamond_id::text, price_cents FROM diamonds WHERE delisted_at IS NULL LIMIT 1"
    ).fetchone() or ("", 0)
    code, out, _ = cli("quote", "--diamond-id", diamond_id)
    assert json.loads(out)["price_cents"] == price
    stone = tmp_path / "stone.json"
    stone.write_text(json.dumps({"feed": "nivoda-natural", "shape": "ROUND", "carats": "1.00", "cost_cents": 100_000,
                                 "lab_grown": True}))  # fmt: skip
    code, out, _ = cli("quote", "--stone", str(stone), "--pricing-version", str(version))
    assert (json.loads(out)["rule_name"], json.loads(out)["price_cents"]) == ("lab grown", 112_599)


@pytest.mark.slow
def test_an_invalid_draft_exits_1_and_a_bad_file_2(pricing_api: PricingApi, tmp_path, monkeypatch, capsys):
    def cli(*args: str) -> tuple[int, str, str]:
        return pricing_cli(pricing_api, monkeypatch, capsys, *args)

    code, out, _ = cli("create")
    version = json.loads(out)["pricing_version"]
    code, out, _ = cli("validate", str(version))
    assert (code, json.loads(out)["valid"]) == (1, False)  # no rule at all: every stone type unpriced
    code, _, err = cli("activate", str(version), "--comment", "empty")
    assert (code, err.startswith("HTTP 422")) == (1, True)
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [unclosed")
    code, _, err = cli("edit", str(version), str(broken))
    assert code == 2
    assert "neither YAML nor JSON" in err
    code, _, err = cli("edit", str(version), str(tmp_path / "missing.json"))
    assert code == 2
    monkeypatch.delenv("CARATFLOW_KEY_ID")
    from cli.main import main

    assert main(["pricing", "sets"]) == 2
