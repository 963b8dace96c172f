"""Make the OpenAPI document describe the one error format the app really sends.

Litestar documents its own validation error body ({"status_code", "detail", "extra"}) on
every handler that takes parameters, but the app's exception handlers answer with
{"error": {"code", "message", "details"}} (errors.py). Clients generated from the schema,
and schemathesis' response-schema check, must see the real shape.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import OpenAPIType, Reference, Schema

from waymark.errors import ERROR_FIELDS
from waymark.maps.styles import style_schema_components

ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error"],
    properties={"error": Schema(
        type=OpenAPIType.OBJECT,
        required=list(ERROR_FIELDS),
        properties={name: Schema(type=OpenAPIType(kind)) for name, kind in ERROR_FIELDS.items()})},
    description='Every error: {"error": {"code", "message", "details"}}',
)
_LITESTAR_ERROR = ["detail", "status_code"]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def document_error_format(app: Litestar) -> None:
    """Build the schema once and replace Litestar's error bodies with ours (in place)."""
    openapi = app.openapi_schema
    schemas = openapi.components.schemas
    schemas["Error"] = ERROR_SCHEMA
    ref = Reference(ref="#/components/schemas/Error")
    for item in (openapi.paths or {}).values():
        for method in METHODS:
            operation = getattr(item, method, None)
            for response in (getattr(operation, "responses", None) or {}).values():
                for media in (getattr(response, "content", None) or {}).values():
                    schema = media.schema
                    if isinstance(schema, Schema) and sorted(schema.required or []) == \
                            _LITESTAR_ERROR:
                        media.schema = ref
                        media.examples = None


#: the layer routes whose bodies carry a layer style: (path, method) -> required members
_LAYER_BODIES = {("/api/v1/maps/{map_id}/layers", "post"): ["name"],
                 ("/api/v1/maps/{map_id}/layers/{layer_id}", "patch"): []}


def document_layer_style(app: Litestar) -> None:
    """Publish the layer style document (maps/styles.py) as JSON Schema, as the body of the
    layer create and update routes (their handlers take the raw JSON and validate it)."""
    openapi = app.openapi_schema
    style, components = style_schema_components()
    openapi.components.schemas.update(components)
    body = {"type": "object", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "style": style, "visible": {"type": "boolean"}, "position": {"type": "integer"}}}
    for (path, method), required in _LAYER_BODIES.items():
        operation = getattr((openapi.paths or {}).get(path), method, None)
        media = operation.request_body.content["application/json"] if operation else None
        if media is not None:
            media.schema = {**body, "required": required} if required else body
