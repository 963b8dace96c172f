"""/api/v1/maps: maps, members and layers."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from litestar import Request, Response, delete, get, patch, post
from sqlalchemy import Row, select

from waymark import jsonutil
from waymark.accounts.actor import Actor
from waymark.db.models import Map
from waymark.errors import Forbidden
from waymark.maps import layers as layer_ops
from waymark.maps import service
from waymark.maps.access import cors_headers, is_public, load_map
from waymark.maps.events import layer_event, map_event
from waymark.maps.state import layer_json, map_json, member_json
from waymark.web import Services, if_match_version, int_query, json_object, threaded

MAP = "/api/v1/maps/{map_id:str}"
LAYER = MAP + "/layers/{layer_id:str}"


def _schedule(services: Services, layer_id: int) -> None:
    services.publisher.schedule(layer_id)


def _publish(services: Services, map_id: str, event: dict[str, Any]) -> None:
    """Broadcast a committed change to the map's live clients (never blocks, never fails)."""
    edits = services.edits
    if edits is not None:
        edits.publish(map_id, event)


@get("/api/v1/maps", tags=["maps"])
@threaded
def list_maps(request: Request, services: Services, actor: Actor) -> list[dict[str, Any]]:
    """Maps by scope: public (default for anonymous), mine, shared, trash; q searches titles."""
    scope = request.query_params.get("scope") or ("mine" if actor.is_authenticated else "public")
    with services.db.read() as s:
        return service.list_maps(s, actor, scope, request.query_params.get("q", "")[:200],
                                 int_query(request, "limit", 50), int_query(request, "offset", 0),
                                 trash_days=services.settings.trash_days)


@post("/api/v1/maps", status_code=201, tags=["maps"])
@threaded
def create_map(services: Services, actor: Actor, data: Any) -> Response:
    uid = actor.require_write()
    with services.db.write() as s:
        map_ = service.create_map(s, uid, json_object(data))
        body = {**map_json(map_, "owner"),
                "layers": [layer_json(layer, map_.public_id) for layer in layer_ops.list_layers(s, map_)]}
    return Response(body, status_code=201, headers={"Location": f"/api/v1/maps/{map_.public_id}"})


@get(MAP, tags=["maps"])
async def get_map(services: Services, actor: Actor, map_id: str) -> Response:
    """The map with its layers; `role` is the caller's role (null for visitors).

    Public maps seen by visitors are cached under the map's version (read from the database
    on every request), so the next read after an edit already gets the new version.
    """
    key = None
    if not actor.is_authenticated and services.cache is not None:
        def version() -> Row[Any] | None:
            with services.db.read() as s:
                return s.execute(select(Map.version, Map.visibility, Map.deleted_at)
                                 .where(Map.public_id == map_id)).first()

        row = await to_thread.run_sync(version)
        if row is not None and is_public(row[1]) and row[2] is None:
            key = f"map:{map_id}:v{row[0]}"
            cached = await services.cache.get(key)
            if cached is not None:
                return Response(cached, media_type="application/json",
                                headers=cors_headers(actor))

    def load() -> dict[str, Any]:
        with services.db.read() as s:
            map_, role = load_map(s, map_id, actor, include_deleted=True)
            return {**map_json(map_, role), "layers": [layer_json(layer, map_.public_id)
                                                       for layer in layer_ops.list_layers(s, map_)]}

    body = await to_thread.run_sync(load)
    # Cache only the public view of this exact version, once every layer is published.
    if key and body["role"] is None and is_public(body["visibility"]) \
            and key == f"map:{map_id}:v{body['version']}" \
            and all(layer["snapshot_url"] for layer in body["layers"]):
        await services.cache.put(key, jsonutil.dumpb(body))
    return Response(body, headers=cors_headers(actor))


@patch(MAP, tags=["maps"])
@threaded
def update_map(services: Services, actor: Actor, map_id: str, data: Any) -> dict[str, Any]:
    """Editors change title, description, view and basemap; only the owner changes visibility."""
    with services.db.write() as s:
        map_, role = load_map(s, map_id, actor, "edit", for_update=True)
        service.update_map(s, map_, role, actor.require_write(), json_object(data))
        out = map_json(map_, role)
    _publish(services, map_id, map_event("map.update", actor, data=out))
    return out


@delete(MAP, status_code=204, tags=["maps"])
@threaded
def trash_map(services: Services, actor: Actor, map_id: str) -> None:
    """Move the map to the trash; the owner can restore it for 30 days."""
    with services.db.write() as s:
        map_, _ = load_map(s, map_id, actor, "own", for_update=True)
        service.trash_map(s, map_, actor.require_write())
    _publish(services, map_id, map_event("map.delete", actor))


@post(MAP + "/restore", status_code=200, tags=["maps"])
@threaded
def restore_map(services: Services, actor: Actor, map_id: str) -> dict[str, Any]:
    with services.db.write() as s:
        map_, role = load_map(s, map_id, actor, "own", include_deleted=True, for_update=True)
        service.restore_map(s, map_, actor.require_write())
        return map_json(map_, role)


# ---- members ---------------------------------------------------------------------------
@get(MAP + "/members", tags=["members"])
@threaded
def list_members(services: Services, actor: Actor, map_id: str) -> list[dict[str, Any]]:
    """Members are visible to members only (their e-mails are personal data)."""
    with services.db.read() as s:
        map_, role = load_map(s, map_id, actor)
        if role is None:
            actor.require_user()
            raise Forbidden("only members can see the member list", code="member_required")
        return [member_json(m) for m in service.list_members(s, map_)]


@post(MAP + "/members", status_code=201, tags=["members"])
@threaded
def add_member(services: Services, actor: Actor, map_id: str, data: Any) -> dict[str, Any]:
    body = json_object(data)
    with services.db.write() as s:
        map_, _ = load_map(s, map_id, actor, "own")
        member = service.add_member(s, map_, actor.require_write(), str(body.get("email", "")),
                                    body.get("role"))
        out = member_json(member)
    _publish(services, map_id, map_event("access.changed", actor, user_id=out["user_id"]))
    return out


@patch(MAP + "/members/{user_id:int}", tags=["members"])
@threaded
def change_member(services: Services, actor: Actor, map_id: str, user_id: int,
                  data: Any) -> dict[str, Any]:
    body = json_object(data)
    with services.db.write() as s:
        map_, _ = load_map(s, map_id, actor, "own")
        out = member_json(service.change_member(s, map_, actor.require_write(), user_id,
                                                body.get("role")))
    _publish(services, map_id, map_event("access.changed", actor, user_id=user_id))
    return out


@delete(MAP + "/members/{user_id:int}", status_code=204, tags=["members"])
@threaded
def remove_member(services: Services, actor: Actor, map_id: str, user_id: int) -> None:
    with services.db.write() as s:
        map_, _ = load_map(s, map_id, actor, "own")
        service.remove_member(s, map_, actor.require_write(), user_id)
    _publish(services, map_id, map_event("access.changed", actor, user_id=user_id))


# ---- layers ----------------------------------------------------------------------------
@get(MAP + "/layers", tags=["layers"])
@threaded
def list_layers(services: Services, actor: Actor, map_id: str) -> Response:
    with services.db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        return Response([layer_json(layer, map_.public_id)
                         for layer in layer_ops.list_layers(s, map_)], headers=cors_headers(actor))


@post(MAP + "/layers", status_code=201, tags=["layers"])
@threaded
def create_layer(services: Services, actor: Actor, map_id: str, data: Any) -> dict[str, Any]:
    with services.db.write() as s:
        map_, _ = load_map(s, map_id, actor, "edit", for_update=True)
        layer = layer_ops.create_layer(s, map_, actor.require_write(), json_object(data))
        s.flush()
        out = layer_json(layer, map_.public_id)
    _schedule(services, layer.id)
    _publish(services, map_id, layer_event("layer.create", out["id"], actor, layer=out))
    return out


@get(LAYER, tags=["layers"])
@threaded
def get_layer(services: Services, actor: Actor, map_id: str, layer_id: str) -> Response:
    with services.db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        layer = layer_ops.get_layer(s, map_, layer_id)
        return Response(layer_json(layer, map_.public_id),
                        headers={"ETag": f'"{layer.version}"', **cors_headers(actor)})


@patch(LAYER, tags=["layers"])
@threaded
def update_layer(request: Request, services: Services, actor: Actor, map_id: str, layer_id: str,
                 data: Any) -> Response:
    """Rename, restyle, show/hide or move a layer. If-Match: the layer version (optional)."""
    body = json_object(data)
    expected = if_match_version(request, None)
    with services.db.write() as s:
        map_, _ = load_map(s, map_id, actor, "edit")
        layer = layer_ops.get_layer(s, map_, layer_id)
        layer = layer_ops.update_layer(s, map_, layer, actor.require_write(), body, expected)
        out = layer_json(layer, map_.public_id)
    _schedule(services, layer.id)
    _publish(services, map_id, layer_event("layer.update", out["id"], actor, layer=out))
    return Response(out, headers={"ETag": f'"{out["version"]}"'})


@delete(LAYER, status_code=204, tags=["layers"])
@threaded
def delete_layer(services: Services, actor: Actor, map_id: str, layer_id: str) -> None:
    with services.db.write() as s:
        map_, _ = load_map(s, map_id, actor, "edit")
        layer_ops.delete_layer(s, map_, layer_ops.get_layer(s, map_, layer_id), actor.require_write())
    _publish(services, map_id, layer_event("layer.delete", layer_id, actor))


@get(MAP + "/history", tags=["history"])
@threaded
def map_history(request: Request, services: Services, actor: Actor,
                map_id: str) -> list[dict[str, Any]]:
    """Recent changes to the map and all its layers, newest first (`before` pages back)."""
    with services.db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        return layer_ops.history(s, map_, None, limit=int_query(request, "limit", 50),
                                 before_id=int_query(request, "before", 0) or None)


ROUTES = [list_maps, create_map, get_map, update_map, trash_map, restore_map, list_members,
          add_member, change_member, remove_member, list_layers, create_layer, get_layer,
          update_layer, delete_layer, map_history]
