"""Account administration: the `waymark user …` commands and the admin page / API, with the
rules (disabling ends sessions and tokens at once; deleting asks about maps and removes the
person; only administrators get in)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from waymark.cli import main
from waymark.db.models import Change, Map, Member, User

POINT = {"type": "Point", "coordinates": [-3.19, 55.95]}


def cli(app: Any, *args: str, input: str | None = None, code: int = 0) -> str:
    settings = app.state.services.settings
    result = CliRunner().invoke(main, list(args), input=input, env={
        "WAYMARK_DATABASE_URL": settings.resolved_database_url,
        "WAYMARK_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == code, result.output
    # the in-process app's access log shares this stdout: keep the command's own lines
    return "".join(line for line in result.output.splitlines(keepends=True)
                   if not line.startswith('{"event":'))


def with_map(client: Any, title: str) -> dict[str, Any]:
    m = client.create_map(title)
    layer = m["layers"][0]["id"]
    r = client.post(f"/api/v1/maps/{m['id']}/layers/{layer}/features",
                    json={"geometry": POINT, "properties": {"name": title}})
    assert r.status_code == 201
    return m


def db(app: Any) -> Any:
    return app.state.services.db


# ---- the commands ----------------------------------------------------------------------------
def test_list_show_and_set_admin(app, alice, bob) -> None:  # type: ignore[no-untyped-def]
    with_map(alice, "Walks")
    out = cli(app, "user", "list")
    assert "alice@example.com" in out and "bob@example.com" in out and "2 account(s)" in out
    assert "bob@example.com" not in cli(app, "user", "list", "--search", "ALI")
    shown = json.loads(cli(app, "user", "show", "alice@example.com", "--json"))
    assert shown["maps_owned"] == 1 and shown["is_admin"] is False and shown["disabled_at"] is None
    assert "an administrator" in cli(app, "user", "set-admin", "alice@example.com")
    assert json.loads(cli(app, "user", "show", "alice@example.com", "--json"))["is_admin"] is True
    # the last administrator cannot lose the role
    assert "last administrator" in cli(app, "user", "set-admin", "alice@example.com", "--remove",
                                       code=1)
    assert "no user nobody@example.com" in cli(app, "user", "show", "nobody@example.com", code=1)


def test_disable_ends_sessions_and_tokens_at_once(app, clients, alice) -> None:  # type: ignore[no-untyped-def]
    token = alice.post("/api/v1/tokens", json={"name": "t", "scope": "write"}).json()["token"]
    bot = clients()
    bot.token = token
    other = clients()
    assert other.login("alice@example.com").status_code == 200
    assert bot.get("/api/v1/auth/me").status_code == 200

    assert "sessions ended, API tokens revoked" in cli(app, "user", "disable", "alice@example.com")
    for client in (alice, other, bot):
        assert client.get("/api/v1/auth/me").status_code == 401
    r = clients().login("alice@example.com")
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_disabled"
    assert clients().login("alice@example.com", "wrong password!!").status_code == 401

    cli(app, "user", "enable", "alice@example.com")
    again = clients()
    assert again.login("alice@example.com").status_code == 200
    assert again.get("/api/v1/auth/me").status_code == 200
    assert bot.get("/api/v1/auth/me").status_code == 401  # old tokens stay revoked
    assert alice.get("/api/v1/auth/me").status_code == 401  # and old sessions ended


def test_delete_transfers_maps_and_removes_personal_data(app, alice, bob) -> None:  # type: ignore[no-untyped-def]
    m = with_map(alice, "Walks")
    alice_id = alice.user["id"]
    out = cli(app, "user", "delete", "alice@example.com", "--maps", "transfer",
              "--to", "bob@example.com", "--yes")
    assert "deleted alice@example.com" in out and "1 map(s) transferred to bob@example.com" in out
    with db(app).read() as s:
        assert s.scalar(select(User).where(User.email == "alice@example.com")) is None
        map_ = s.scalar(select(Map).where(Map.public_id == m["id"]))
        assert map_.owner_id == bob.user["id"]
        assert s.scalar(select(Member.role).where(Member.map_id == map_.id,
                                                  Member.user_id == bob.user["id"])) == "owner"
        changes = list(s.scalars(select(Change).where(Change.map_id == map_.id)))
        assert changes and all(c.user_id is None for c in changes)  # history stays, anonymous
        assert s.scalar(select(Member).where(Member.user_id == alice_id)) is None
    r = bob.get(f"/api/v1/maps/{m['id']}")
    assert r.status_code == 200 and r.json()["role"] == "owner"
    assert alice.get("/api/v1/auth/me").status_code == 401


def test_delete_asks_about_maps_and_can_trash_them(app, alice) -> None:  # type: ignore[no-untyped-def]
    from waymark.maps.retention import archive_store

    m = with_map(alice, "Secret places")
    # no --maps: the command asks (transfer or trash), then asks to confirm
    out = cli(app, "user", "delete", "alice@example.com", input="trash\ny\n")
    assert "owns 1 map(s)" in out and "1 map(s) moved to the trash and archived" in out
    with db(app).read() as s:
        assert s.scalar(select(Map).where(Map.public_id == m["id"])) is None
    archive = archive_store(app.state.services.settings)
    keys = [i.key for i in archive.list_sync("maps")]
    assert len(keys) == 1 and keys[0].startswith(f"maps/{m['id']}/")
    bundle = json.loads(archive.get_sync(keys[0]))
    assert bundle["archived"]["owner_email"] is None  # the person is gone from the archive too
    assert bundle["layers"][0]["features"][0]["properties"] == {"name": "Secret places"}


def test_delete_refuses_without_an_answer_or_a_valid_heir(app, alice) -> None:  # type: ignore[no-untyped-def]
    with_map(alice, "Walks")
    assert "Aborted" in cli(app, "user", "delete", "alice@example.com", "--maps", "trash",
                            input="n\n", code=1)
    out = cli(app, "user", "delete", "alice@example.com", "--maps", "transfer",
              "--to", "nobody@example.com", "--yes", code=1)
    assert "no user nobody@example.com" in out
    out = cli(app, "user", "delete", "alice@example.com", "--maps", "transfer",
              "--to", "alice@example.com", "--yes", code=1)
    assert "another, active user" in out
    with db(app).read() as s:  # nothing happened
        assert s.scalar(select(User).where(User.email == "alice@example.com")) is not None


def test_export_has_every_owned_map_and_the_account(app, alice, bob, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first, second = with_map(alice, "Walks"), with_map(alice, "Rides")
    assert alice.delete(f"/api/v1/maps/{second['id']}").status_code == 204  # trash included
    shared = with_map(bob, "Bob's")
    assert bob.post(f"/api/v1/maps/{shared['id']}/members",
                    json={"email": "alice@example.com", "role": "editor"}).status_code == 201
    alice.post("/api/v1/tokens", json={"name": "phone", "scope": "read"})
    target = tmp_path / "alice.zip"
    assert "wrote" in cli(app, "user", "export", "alice@example.com", "-o", str(target))
    with zipfile.ZipFile(io.BytesIO(target.read_bytes())) as zf:
        names = set(zf.namelist())
        account = json.loads(zf.read("account.json"))
        assert names == {"account.json", f"maps/{first['id']}.json", f"maps/{second['id']}.json"}
        bundle = zf.read(f"maps/{first['id']}.json")
    assert account["account"]["email"] == "alice@example.com"
    assert [t["name"] for t in account["api_tokens"]] == ["phone"]
    assert "token_hash" not in json.dumps(account)
    assert account["memberships"] == [{"map": shared["id"], "title": "Bob's", "role": "editor"}]
    assert {m["title"] for m in account["maps_owned"]} == {"Walks", "Rides"}
    # a bundle re-imports as a map
    r = bob.post("/api/v1/maps/import-bundle", files={"file": ("walks.json", bundle)})
    assert r.status_code == 201, r.text


# ---- the admin API and page -----------------------------------------------------------------
@pytest.fixture
def root(app, clients):  # type: ignore[no-untyped-def]
    c = clients()
    c.signup("root@example.com", name="Root")
    cli(app, "user", "set-admin", "root@example.com")
    return c


def test_only_administrators_get_in(app, anon, alice, root) -> None:  # type: ignore[no-untyped-def]
    assert anon.get("/api/v1/admin/users").status_code == 401
    r = anon.get("/admin/users", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"] == "/login?next=/admin/users"
    r = alice.get("/api/v1/admin/users")
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
    for method, path in [("POST", "/disable"), ("POST", "/enable"), ("DELETE", "")]:
        r = alice.request(method, f"/api/v1/admin/users/{root.user['id']}{path}")
        assert r.status_code == 403, (method, path)
    page = alice.get("/admin/users")
    assert page.status_code == 404 and "alice@example.com" not in page.text.split("</header>")[1]
    assert 'href="/admin/users"' not in alice.get("/dashboard").text
    # the administrator sees the page, the link, and can search
    page = root.get("/admin/users")
    assert page.status_code == 200 and "alice@example.com" in page.text
    assert 'href="/admin/users"' in root.get("/dashboard").text
    found = root.get("/admin/users?q=alic").text
    assert "alice@example.com" in found and "root@example.com</td>" not in found
    assert [u["email"] for u in root.get("/api/v1/admin/users?q=ROOT").json()] == ["root@example.com"]


def test_admin_disables_enables_and_deletes(app, clients, alice, bob, root) -> None:  # type: ignore[no-untyped-def]
    m = with_map(alice, "Walks")
    uid = alice.user["id"]
    r = root.post(f"/api/v1/admin/users/{uid}/disable")
    assert r.status_code == 200 and r.json()["disabled_at"]
    assert alice.get("/api/v1/auth/me").status_code == 401
    assert "Disabled" in root.get("/admin/users?q=alice").text
    assert root.post(f"/api/v1/admin/users/{uid}/enable").json()["disabled_at"] is None
    # own account: not from the page
    r = root.post(f"/api/v1/admin/users/{root.user['id']}/disable")
    assert r.status_code == 409 and r.json()["error"]["code"] == "own_account"
    # deleting asks what happens to the maps
    r = root.delete(f"/api/v1/admin/users/{uid}")
    assert r.status_code == 422 and r.json()["error"]["details"]["maps_owned"] == 1
    assert "owns 1 map(s)" in r.json()["error"]["message"]
    r = root.delete(f"/api/v1/admin/users/{uid}?maps=transfer&to=bob@example.com")
    assert r.status_code == 200, r.text
    assert r.json()["transferred"] == [m["id"]] and r.json()["to"] == "bob@example.com"
    assert bob.get(f"/api/v1/maps/{m['id']}").json()["role"] == "owner"
    assert root.get(f"/api/v1/admin/users/{uid}").status_code == 404
