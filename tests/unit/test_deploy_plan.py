"""Deploy plans: bad plans get a clear error naming the problem; a good one renders the
HAProxy configuration with one checked server per instance."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from waymark.cli import main
from waymark.deploy.haproxy import LimitOptions, render_config
from waymark.deploy.plan import DeployError, load_plan

GOOD = '''
state_dir = "state"
haproxy_socket = "haproxy.sock"
frontend_url = "http://127.0.0.1:8080/"
ready_grace = 5
[env]
WAYMARK_ENV = "prod"
[[instances]]
name = "a"
port = 9001
[[instances]]
name = "b"
port = 9002
host = "10.0.0.2"
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def test_good_plan(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, GOOD))
    assert plan.state_dir == (tmp_path / "state").resolve()
    assert plan.frontend_url == "http://127.0.0.1:8080" and plan.ready_grace == 5
    assert [i.url for i in plan.instances] == ["http://127.0.0.1:9001", "http://10.0.0.2:9002"]
    assert plan.render(plan.command, Path("/r/1"), plan.instances[1])[:6] == [
        "/r/1/bin/waymark", "serve", "--host", "10.0.0.2", "--port", "9002"]
    cfg = render_config(plan, LimitOptions(bind="127.0.0.1:81", conn_limit=7, rate_limit=9))
    assert "    server a 127.0.0.1:9001 check\n    server b 10.0.0.2:9002 check" in cfg
    assert "sc0_conn_cur gt 7" in cfg and "sc0_http_req_rate gt 9" in cfg
    assert "option httpchk GET /readyz" in cfg and "{{" not in cfg


@pytest.mark.parametrize(("text", "message"), [
    ("state_dir = [", "not valid TOML"),
    ('state_dir = "s"\nhaproxy_socket = "h"\nfrontend_url = "x"', "at least one [[instances]]"),
    (GOOD.replace('name = "b"', 'name = "a"'), "must be unique"),
    (GOOD.replace("port = 9002", 'port = "many"'), "integer port"),
    (GOOD.replace('frontend_url = "http://127.0.0.1:8080/"', ""), "frontend_url is required"),
    (GOOD.replace('state_dir = "state"', ""), "state_dir is required"),
    ('command = "waymark serve"\n' + GOOD, "command must be a list"),
])
def test_bad_plans_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DeployError, match=message.replace("[", r"\[")):
        load_plan(write(tmp_path, text))


def test_release_must_be_a_release_directory(tmp_path: Path) -> None:
    plan = write(tmp_path, GOOD)
    not_a_release = tmp_path / "empty"
    not_a_release.mkdir()
    result = CliRunner().invoke(main, ["deploy", "release", "--plan", str(plan),
                                       str(not_a_release)])
    assert result.exit_code == 1 and "is not a release directory" in result.output
    assert not (tmp_path / "state").exists()  # nothing was started or written


def test_rollback_without_history_is_refused(tmp_path: Path) -> None:
    plan = write(tmp_path, GOOD)
    result = CliRunner().invoke(main, ["deploy", "rollback", "--plan", str(plan)])
    assert result.exit_code == 1 and "no previous release" in result.output
