"""/api/v1/maps/{map}/layers/{layer}/features: per-feature edits, batch, history, revert.

Every feature carries a version; its ETag is that version. Send it back in If-Match (or as
"version" in the body) and a stale edit gets 412 with the current feature, so nothing is
silently overwritten.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from litestar import Request, Response, delete, get, patch, post, put
from sqlalchemy import select

from waymark.accounts.actor import Actor
from waymark.api.routes import LAYER, MAP, _publish, _schedule
from waymark.db.models import Feature
from waymark.errors import Invalid, NotFound, PreconditionFailed
from waymark.maps import feature_write
from waymark.maps import layers as layer_ops
from waymark.maps.access import load_map
from waymark.maps.change_revert import revert_change
from waymark.maps.editing import UNSET, parse_feature_id
from waymark.maps.events import layer_event
from waymark.maps.feature_write import FeatureEdit
from waymark.maps.map_batch import apply_map_batch
from waymark.maps.state import feature_json, layer_json
from waymark.maps.table import table_page
from waymark.web import Services, if_match_version, int_query, json_object, run_write, threaded

FEATURES = LAYER + "/features"
FEATURE = FEATURES + "/{feature_id:str}"
MAX_PAGE = 10_000


def _feature_response(feature: Feature, status: int = 200, layer_version: int | None = None) -> Response:
    headers = {"ETag": f'"{feature.version}"'}
    if layer_version is not None:
        headers["X-Layer-Version"] = str(layer_version)
    return Response(feature_json(feature), status_code=status, headers=headers)


def _bbox_param(raw: str | None) -> tuple[float, float, float, float] | None:
    if not raw:
        return None
    try:
        minx, miny, maxx, maxy = (float(v) for v in raw.split(","))
    except ValueError:
        raise Invalid("bbox must be minlon,minlat,maxlon,maxlat", details={"field": "bbox"}) from None
    return minx, miny, maxx, maxy


@get(FEATURES, tags=["features"])
@threaded
def list_features(request: Request, services: Services, actor: Actor, map_id: str,
                  layer_id: str) -> dict[str, Any]:
    """Features as a FeatureCollection, optionally inside a bbox, paged by `after` (a feature id).

    For whole layers prefer the snapshot (`data_url`): it is precomputed and cacheable.
    """
    bbox = _bbox_param(request.query_params.get("bbox"))
    limit = min(max(int_query(request, "limit", 1000), 1), MAX_PAGE)
    with services.db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        layer = layer_ops.get_layer(s, map_, layer_id)
        query = select(Feature).where(Feature.layer_id == layer.id)
        if bbox:
            minx, miny, maxx, maxy = bbox
            query = query.where(Feature.maxx >= minx, Feature.minx <= maxx,
                                Feature.maxy >= miny, Feature.miny <= maxy)
        after = request.query_params.get("after")
        if after:
            after_pk = s.scalar(select(Feature.id).where(Feature.uuid == parse_feature_id(after)))
            query = query.where(Feature.id > (after_pk or 0))
        rows = list(s.scalars(query.order_by(Feature.id).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return {"type": "FeatureCollection", "layer_version": layer.version,
                "features": [feature_json(f) for f in rows],
                "next": rows[-1].uuid if more else None}


@get(LAYER + "/table", tags=["features"])
@threaded
def feature_table(request: Request, services: Services, actor: Actor, map_id: str,
                  layer_id: str) -> dict[str, Any]:
    """One page of the layer's features as table rows: `offset`, `limit` (≤ 500), `sort` (a
    property), `order` (asc|desc), `q` (text in any shown property). With `total` and the
    layer's `columns`; a 100,000-feature layer is paged in the database."""
    q = request.query_params
    order = q.get("order", "asc")
    if order not in ("asc", "desc"):
        raise Invalid("order must be asc or desc", details={"field": "order"})
    with services.db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        layer = layer_ops.get_layer(s, map_, layer_id)
        return table_page(s, layer, offset=int_query(request, "offset", 0),
                          limit=int_query(request, "limit", 50), sort=q.get("sort") or None,
                          descending=order == "desc", text=q.get("q", "")[:200])


@post(FEATURES, status_code=201, tags=["features"])
@threaded
def create_feature(request: Request, services: Services, actor: Actor, map_id: str, layer_id: str,
                   data: Any) -> Response:
    """Add one GeoJSON Feature ({geometry, properties}, optional UUID "id")."""
    body = json_object(data)
    return _edit(request, services, actor, map_id, layer_id, FeatureEdit(
        "create", body.get("id") or None, body.get("geometry"), body.get("properties")))


def _edit(request: Request, services: Services, actor: Actor, map_id: str, layer_id: str,
          edit: FeatureEdit, *, wait: bool = True) -> Response:
    """Run one edit through the one edit path; answer with the feature (or 204 after a delete)."""
    with services.db.write(wait) as s:
        edited = feature_write.apply_feature_edit(s.connection(), actor, map_id, layer_id, edit)
    _schedule(services, edited.layer_pk)
    _publish(services, map_id, edited.event(layer_id, actor))
    if edited.feature is None:
        return Response(None, status_code=204)
    return Response(edited.feature, status_code=201 if edit.op == "create" else 200,
                    headers={"ETag": f'"{edited.feature["version"]}"',
                             "X-Layer-Version": str(edited.layer_version)})


@get(FEATURE, tags=["features"])
@threaded
def get_feature(request: Request, services: Services, actor: Actor, map_id: str, layer_id: str,
                feature_id: str) -> Response:
    with services.db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        layer = layer_ops.get_layer(s, map_, layer_id)
        feature = s.scalar(select(Feature).where(Feature.uuid == parse_feature_id(feature_id),
                                                 Feature.layer_id == layer.id))
        if feature is None:
            raise NotFound("feature not found")
        if request.headers.get("if-none-match", "").strip('"') == str(feature.version):
            return Response(None, status_code=304, headers={"ETag": f'"{feature.version}"'})
        return _feature_response(feature)


def _update(request: Request, services: Services, actor: Actor, map_id: str, layer_id: str,
            feature_id: str, body: dict[str, Any], *, replace: bool, wait: bool = True) -> Response:
    expected = if_match_version(request, body)
    if replace:
        geometry, properties = body.get("geometry"), body.get("properties")
    else:
        geometry, properties = body.get("geometry", UNSET), body.get("properties", UNSET)
    return _edit(request, services, actor, map_id, layer_id,
                 FeatureEdit("update", feature_id, geometry, properties, expected), wait=wait)


# Single-feature edits run through web.run_write: on the event loop when the write lock is free.
@put(FEATURE, tags=["features"])
async def replace_feature(request: Request, services: Services, actor: Actor, map_id: str,
                          layer_id: str, feature_id: str, data: Any) -> Response:
    """Replace geometry and properties. If-Match: the version you edited."""
    return await run_write(services.db, partial(
        _update, request, services, actor, map_id, layer_id, feature_id, json_object(data),
        replace=True))


@patch(FEATURE, tags=["features"])
async def patch_feature(request: Request, services: Services, actor: Actor, map_id: str,
                        layer_id: str, feature_id: str, data: Any) -> Response:
    """Change geometry and/or properties (only the members given). If-Match: the version."""
    return await run_write(services.db, partial(
        _update, request, services, actor, map_id, layer_id, feature_id, json_object(data),
        replace=False))


@delete(FEATURE, status_code=204, tags=["features"])
async def delete_feature(request: Request, services: Services, actor: Actor, map_id: str,
                         layer_id: str, feature_id: str) -> None:
    await run_write(services.db, partial(_delete, request, services, actor, map_id, layer_id,
                                         feature_id))


def _delete(request: Request, services: Services, actor: Actor, map_id: str, layer_id: str,
            feature_id: str, *, wait: bool = True) -> None:
    _edit(request, services, actor, map_id, layer_id,
          FeatureEdit("delete", feature_id, expected_version=if_match_version(request)), wait=wait)


@post(LAYER + "/batch", status_code=200, tags=["features"])
@threaded
def batch(services: Services, actor: Actor, map_id: str, layer_id: str,
          data: Any) -> dict[str, Any]:
    """Apply {"operations": [{"op": "add"|"update"|"delete", "id", "version", "geometry",
    "properties"}]} atomically: all succeed as one new layer version, or none does."""
    body = json_object(data)
    with services.db.write() as s:
        layer_pk, version, results = feature_write.apply_batch(
            s.connection(), actor, map_id, layer_id, body.get("operations"))
        out: dict[str, Any] = {"layer_version": version, "results": results}
    _reloaded(services, actor, map_id, layer_id, layer_pk, version)
    return out


@post(MAP + "/batch", status_code=200, tags=["features"])
@threaded
def map_batch(services: Services, actor: Actor, map_id: str, data: Any) -> dict[str, Any]:
    """Apply {"layers": [{"layer", "operations": [...]}]} atomically: the operations of every
    listed layer (as in a layer's batch), one new version per layer, or nothing."""
    body = json_object(data)
    with services.db.write() as s:
        done = apply_map_batch(s.connection(), actor, map_id, body.get("layers"))
    for layer_id, layer_pk, version, _ in done:
        _reloaded(services, actor, map_id, layer_id, layer_pk, version)
    return {"layers": [{"layer": layer_id, "layer_version": version, "results": results}
                       for layer_id, _, version, results in done]}


@get(LAYER + "/history", tags=["history"])
@threaded
def layer_history(request: Request, services: Services, actor: Actor, map_id: str,
                  layer_id: str) -> list[dict[str, Any]]:
    """The layer's changes, newest first: who, when, op, before and after."""
    with services.db.read() as s:
        map_, _ = load_map(s, map_id, actor)
        layer = layer_ops.get_layer(s, map_, layer_id)
        return layer_ops.history(s, map_, layer, limit=int_query(request, "limit", 50),
                                 before_id=int_query(request, "before", 0) or None)


def _reloaded(services: Services, actor: Actor, map_id: str, layer_id: str, layer_pk: int,
              version: int) -> None:
    """After a batch or a revert: publish the new version and tell open pages to reload the
    layer."""
    _schedule(services, layer_pk)
    _publish(services, map_id, layer_event("layer.reload", layer_id, actor, layer_version=version))


@post(LAYER + "/revert", status_code=200, tags=["history"])
@threaded
def revert(services: Services, actor: Actor, map_id: str, layer_id: str,
           data: Any) -> dict[str, Any]:
    """Revert the layer to {"version": N}; recorded as a new version, so it can be undone too."""
    body = json_object(data)
    with services.db.write() as s:
        map_, _ = load_map(s, map_id, actor, "edit")
        layer = layer_ops.get_layer(s, map_, layer_id)
        layer = layer_ops.revert_layer(s, map_, layer, actor.require_write(), body.get("version"))
        out = layer_json(layer, map_.public_id)
        layer_pk = layer.id
    _reloaded(services, actor, map_id, layer_id, layer_pk, out["version"])
    return out


@post(LAYER + "/changes/{change_id:int}/revert", status_code=200, tags=["history"])
@threaded
def revert_one_change(request: Request, services: Services, actor: Actor, map_id: str,
                      layer_id: str, change_id: int) -> dict[str, Any]:
    """Invert exactly one change (a feature edit, add or delete, a layer settings change, an
    import) as a new version; later changes stay. 409 `later_changes` names the later changes
    it would overwrite. Optional If-Match: the layer version the reverting client saw."""
    expected = if_match_version(request)
    with services.db.write() as s:
        map_, _ = load_map(s, map_id, actor, "edit")
        layer = layer_ops.get_layer(s, map_, layer_id)
        if expected is not None and expected != layer.version:
            raise PreconditionFailed(f"layer is at version {layer.version}, not {expected}",
                                     details={"current_version": layer.version})
        layer = revert_change(s, map_, layer, actor.require_write(), change_id)
        out = layer_json(layer, map_.public_id)
        layer_pk = layer.id
    _reloaded(services, actor, map_id, layer_id, layer_pk, out["version"])
    return out


ROUTES = [list_features, feature_table, create_feature, get_feature, replace_feature, patch_feature,
          delete_feature, batch, map_batch, layer_history, revert, revert_one_change]
