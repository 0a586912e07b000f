"""infra/: the Bicep parses and passes checkov, sets or documents every setting, and holds no secret."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
BICEP = ROOT / "infra" / "bicep"
CHECK = ROOT / "infra" / "check.py"
FUNCTION_APP = BICEP / "modules" / "functionapp.bicep"
README = BICEP / "README.md"
LEFT_OUT_HEADING = "## Settings the template does not set"

# Secret-bearing settings that are not typed SecretStr (the URLs in the JSON are tokens).
SECRET_SETTINGS = {"NOTIFY_WEBHOOKS"}
# Host settings of local.settings.sample.json that Flex Consumption replaces, and with what.
REPLACED_HOST_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME": None,  # functionAppConfig.runtime; Flex refuses the setting
    "AzureWebJobsFeatureFlags": None,  # worker indexing is on by default for the v2 Python model
    "AzureWebJobsStorage": "AzureWebJobsStorage__credential",  # identity-based, no connection string
}
SECRET_NAME = re.compile(r"(?i)password|secret|token|apikey|accountkey|connectionstring|webhookurl")
# ...SecretName holds the name of a vault secret, ...TokenMode a choice of protocol: neither is a value.
NOT_A_SECRET = re.compile(r"(Name|Mode)$")
FORBIDDEN = [
    re.compile(r"(?i)AccountKey\s*="),
    re.compile(r"(?i)SharedAccessSignature\s*="),
    re.compile(r"\blistKeys\("),
    re.compile(r"(?i)\bpassword\s*="),
    re.compile(r"administratorLoginPassword"),
]


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=900, check=False, cwd=ROOT
    )


def bicep_settings() -> dict[str, str]:
    """App settings the Function App module sets: the keys of its `var ...Settings = {...}` objects."""
    found: dict[str, str] = {}
    text = FUNCTION_APP.read_text(encoding="utf-8")
    for block in re.findall(r"^var \w+Settings = [^\n]*\{\n(.*?)^\}", text, flags=re.M | re.S):
        for key, value in re.findall(r"^\s+([A-Za-z][A-Za-z0-9_]*):\s*(.+)$", block, flags=re.M):
            found[key] = value.strip()
    return found


def left_to_operator() -> dict[str, str]:
    """Settings the README's table says the template leaves out, each with its reason."""
    text = README.read_text(encoding="utf-8")
    assert LEFT_OUT_HEADING in text, f"README.md needs a '{LEFT_OUT_HEADING}' table"
    section = text.split(LEFT_OUT_HEADING, 1)[1].split("\n## ", 1)[0]
    listed: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
                listed[name] = cells[-1]
    return listed


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_static_checks_pass() -> None:
    result = run_check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "infra check passed" in result.stdout


@pytest.mark.timeout(900)
def test_check_fails_on_bicep_it_cannot_parse(tmp_path: Path) -> None:
    (tmp_path / "broken.bicep").write_text("param name string =\nresource st 'Microsoft.Storage/x@1' = {\n")
    result = run_check(str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not parse" in result.stderr
    assert "broken.bicep" in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_check_fails_on_an_unwaived_checkov_finding(tmp_path: Path) -> None:
    (tmp_path / "weak.bicep").write_text(
        "resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n"
        "  name: 'stweak'\n  location: 'westeurope'\n  kind: 'StorageV2'\n"
        "  sku: {\n    name: 'Standard_LRS'\n  }\n"
        "  properties: {\n    minimumTlsVersion: 'TLS1_0'\n  }\n}\n"
    )
    result = run_check(str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CKV_AZURE_44" in result.stderr  # TLS 1.0 allowed


def test_every_setting_is_set_or_left_to_the_operator_with_a_reason() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    set_here, listed = set(bicep_settings()), left_to_operator()
    missing = sorted(fields - set_here - set(listed))
    assert not missing, f"set these in {FUNCTION_APP.name} or list them under '{LEFT_OUT_HEADING}': {missing}"
    assert not sorted(set_here & set(listed)), "a setting is both set by the template and listed as left out"
    assert not sorted(set(listed) - fields), "README lists settings that shared.config.Settings no longer reads"
    assert all(len(reason.split()) >= 3 for reason in listed.values()), "every left-out setting needs a reason"


def test_secret_settings_are_key_vault_references() -> None:
    settings = bicep_settings()
    secret_fields = {
        name.upper() for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)
    } | SECRET_SETTINGS
    for name in sorted(secret_fields & set(settings)):
        value = settings[name]
        if name == "DATABASE_URL":  # a conninfo without a password: the app signs in with an Entra token
            assert "password" not in value.lower()
            assert "sslmode=require" in value
            continue
        assert value.startswith("'@Microsoft.KeyVault(SecretUri="), f"{name} must be a Key Vault reference"
    assert settings.get("DATABASE_AUTH") == "'entra'"
    assert "AZURE_CLIENT_ID" in settings


def test_host_settings_are_set() -> None:
    from shared.feed.registry import FEEDS
    from triggers.timers import schedule_setting

    settings = bicep_settings()
    sample = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))
    host = {name for name, doc in sample["Docs"].items() if doc.startswith("Functions host:")}
    host |= {schedule_setting(feed, kind) for feed in FEEDS for kind in ("full", "incremental")}
    host |= set(re.findall(r"%(\w+)%", (ROOT / "host.json").read_text(encoding="utf-8")))
    for name in sorted(host):
        if name in REPLACED_HOST_SETTINGS:
            replacement = REPLACED_HOST_SETTINGS[name]
            assert name not in settings, f"{name} does not apply on Flex Consumption"
            assert replacement is None or replacement in settings
        else:
            assert name in settings, f"host setting {name} is not set by {FUNCTION_APP.name}"


def secret_named(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not NOT_A_SECRET.search(name)


def secret_findings(text: str) -> list[str]:
    """Secret values in a .bicep or parameters text: defaults of secret parameters, keys, passwords."""
    findings = [f"matches {pattern.pattern}" for pattern in FORBIDDEN if pattern.search(text)]
    secure_next = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("@secure()"):
            secure_next = True
            continue
        param = re.match(r"param\s+(\w+)\s+\w+(?:\s*=\s*(.+))?$", stripped)
        if param:
            name, default = param.groups()
            secret = secure_next or secret_named(name)
            if secret and default is not None and default.strip() != "''":
                findings.append(f"parameter {name} has a default value")
            secure_next = False
        elif not stripped.startswith("@"):
            secure_next = False
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return findings
    for name, entry in (document.get("parameters") or {}).items():
        value = entry.get("value") if isinstance(entry, dict) else None
        if secret_named(name) and value and not str(value).startswith("${"):
            findings.append(f"parameter {name} has a value")
    return findings


def test_no_secret_values_in_templates_or_parameter_files() -> None:
    files = sorted(BICEP.rglob("*.bicep")) + sorted(BICEP.rglob("*.json"))
    assert len(files) >= 4
    findings = {str(path.relative_to(ROOT)): secret_findings(path.read_text(encoding="utf-8")) for path in files}
    assert not {path: found for path, found in findings.items() if found}


@pytest.mark.parametrize(
    "planted",
    [
        "@secure()\nparam alertWebhookUrl string = 'https://hooks.example/T0/B0/xyz'\n",
        "param nivodaPassword string = 'hunter2'\n",
        "var conn = 'DefaultEndpointsProtocol=https;AccountName=st;AccountKey=abc=='\n",
        "var db = 'host=h dbname=d user=u password=p'\n",
        '{"parameters": {"feedPassword": {"value": "hunter2"}}}',
    ],
)
def test_secret_scan_finds_a_planted_secret(planted: str) -> None:
    assert secret_findings(planted)


def test_azure_yaml_provisions_the_bicep_and_deploys_the_function_app() -> None:
    config = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    infra = config["infra"]
    assert infra["provider"] == "bicep"
    module = ROOT / infra["path"] / f"{infra['module']}.bicep"
    assert module == BICEP / "main.bicep"
    assert module.exists()
    assert (module.parent / f"{infra['module']}.parameters.json").exists()
    assert "targetScope = 'resourceGroup'" in module.read_text(encoding="utf-8")
    (name, service), *others = config["services"].items()
    assert not others
    assert (service["host"], service["language"], service["project"]) == ("function", "python", ".")
    assert (ROOT / service["project"] / "function_app.py").exists()
    # azd finds the app to deploy to by this tag.
    assert f"'azd-service-name': '{name}'" in FUNCTION_APP.read_text(encoding="utf-8")


def test_every_alert_query_is_deployed_and_documented() -> None:
    alerts = (BICEP / "modules" / "alerts.bicep").read_text(encoding="utf-8")
    loaded = set(re.findall(r"loadTextContent\('alerts/([\w-]+\.kql)'\)", alerts))
    present = {path.name for path in (BICEP / "modules" / "alerts").glob("*.kql")}
    assert loaded == present
    readme = README.read_text(encoding="utf-8")
    assert all(name in readme for name in present), "README.md must describe every alert query"
