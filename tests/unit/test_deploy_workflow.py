"""The CI/CD workflow keeps its promises: tests run through .ci/run, the image is built
only after tests and scans pass, staging follows main, production needs staging and a
protected environment, and every deploy migrates before rolling and undoes a failed rollout."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def workflow() -> dict:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps_text(job: dict) -> str:
    return "\n".join(str(s.get("run", "")) for s in job["steps"])


def test_pipeline_order() -> None:
    jobs = workflow()["jobs"]
    assert ".ci/run" in steps_text(jobs["test"])
    assert set(jobs["image"]["needs"]) == {"lint", "test", "security"}
    assert "refs/heads/main" in jobs["image"]["if"]
    assert jobs["staging"]["needs"] == "image"
    assert set(jobs["production"]["needs"]) == {"image", "staging"}
    assert jobs["staging"]["environment"]["name"] == "staging"
    assert jobs["production"]["environment"]["name"] == "production"  # approval gate


def test_deploys_migrate_first_smoke_after_and_undo_on_failure() -> None:
    jobs = workflow()["jobs"]
    for name in ("staging", "production"):
        text = steps_text(jobs[name])
        assert text.index("waymark-migrate") < text.index("rollout status")
        assert "rollout undo" in text
        assert "/readyz" in text
        assert "needs.image.outputs.digest" in text  # the tested image, by digest


def test_security_job_scans_dependencies_code_and_manifests() -> None:
    text = steps_text(workflow()["jobs"]["security"])
    for tool in ("pip-audit", "ruff check --select S", "npm audit", "checkov"):
        assert tool in text


def test_image_build_uses_the_repository_script() -> None:
    text = steps_text(workflow()["jobs"]["image"])
    assert "deploy/container/build.sh" in text and "COMMIT=" in text


def test_weekly_security_build_rebuilds_scans_and_reports() -> None:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "weekly.yml").read_text())
    on = doc.pop(True, doc.get("on"))
    assert on["schedule"][0]["cron"].split()[-1] == "1"  # weekly (Mondays)
    jobs = doc["jobs"]
    audit, image = steps_text(jobs["audit"]), steps_text(jobs["image"])
    assert "pip-audit --strict" in audit and "npm audit" in audit
    assert "REBUILD_BASE=1" in image and "NO_CACHE=1" in image
    assert "deploy/container/build.sh" in image
    assert "trivy" in image and "--exit-code 1" in image  # a finding fails the run
    report = jobs["report"]
    assert report["if"] == "failure()" and set(report["needs"]) == {"audit", "image"}
    assert "gh issue create" in steps_text(report) and report["permissions"]["issues"] == "write"


def test_base_image_script_uses_the_security_archive_and_checks_for_updates() -> None:
    script = (ROOT / "deploy" / "container" / "build-base.sh").read_text()
    assert "$SUITE-security main" in script and "apt-get -y" in script and "upgrade" in script
    assert "apt-get -s upgrade" in script  # the staleness check on every build
    assert "REBUILD_BASE" in script
