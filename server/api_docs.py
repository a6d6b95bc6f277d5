"""What the OpenAPI schema at /schema says about the JSON API beyond what Litestar reads from the
handlers' signatures: who may call each route (bearer tokens), and the request body of POST
/api/v1/reads, which the handler reads by hand because it takes JSON or multipart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import (
    Components, Encoding, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema, SecurityScheme,
)

from contract.plates import IMAGE_FIELDS
from contract.wire import ReadIn

COMPONENTS = Components(security_schemes={
    "user": SecurityScheme(type="http", scheme="bearer",
                           description="A user's API token, from POST /api/v1/auth/token"),
    "camera": SecurityScheme(type="http", scheme="bearer",
                             description="A camera's token, printed by `platewatch camera add NAME`"),
})
USER_TOKEN = [{"user": []}]
CAMERA_TOKEN = [{"camera": []}]


def struct_schema(kind: type[msgspec.Struct]) -> dict[str, Any]:
    """A struct's JSON Schema as msgspec, the decoder of the body, sees it (so it says exactly what is
    accepted, unknown fields refused), with the nested structs written in place."""
    (root,), definitions = msgspec.json.schema_components([kind], ref_template="{name}")

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            return inline(definitions[node["$ref"]]) if "$ref" in node else {k: inline(v) for k, v in node.items()}
        return [inline(item) for item in node] if isinstance(node, list) else node

    return inline(root)


def read_request_body() -> RequestBody:
    read = struct_schema(ReadIn)  # a plain JSON Schema dict: Litestar writes it out as it is
    form = Schema(
        type=OpenAPIType.OBJECT, required=["read"], additional_properties=False,
        properties={"read": read, **{field: Schema(type=OpenAPIType.STRING, content_media_type="image/jpeg",
                                                   description="a JPEG crop") for field in IMAGE_FIELDS}},
    )
    encoding = {"read": Encoding(content_type="application/json"),
                **{field: Encoding(content_type="image/jpeg") for field in IMAGE_FIELDS}}
    return RequestBody(required=True, description="The read as JSON, or as the JSON field `read` of a "
                                                   "multipart form with optional JPEG crops", content={
        "application/json": OpenAPIMediaType(schema=read),
        "multipart/form-data": OpenAPIMediaType(schema=form, encoding=encoding),
    })


@dataclass
class ReadsOperation(Operation):
    """The operation of POST /api/v1/reads, with the request body Litestar cannot see."""

    def __post_init__(self) -> None:
        self.request_body = read_request_body()


def vendor_operation(kind: type[msgspec.Struct], description: str, form_field: str | None = None,
                     image_field: str | None = None) -> type[Operation]:
    """The operation of a route that decodes another system's JSON itself (to name a bad field its own
    way): as the body, or also as a form field with an optional JPEG."""
    schema = struct_schema(kind)
    content = {"application/json": OpenAPIMediaType(schema=schema)}
    if form_field:
        fields = {form_field: Schema(type=OpenAPIType.STRING, content_media_type="application/json",
                                     description=f"{description}, as text")}
        content["application/x-www-form-urlencoded"] = OpenAPIMediaType(schema=Schema(
            type=OpenAPIType.OBJECT, required=[form_field], properties=fields, additional_properties=False))
        if image_field:
            fields = {**fields, image_field: Schema(type=OpenAPIType.STRING, content_media_type="image/jpeg",
                                                    description="the JPEG frame, kept as the vehicle image")}
        content["multipart/form-data"] = OpenAPIMediaType(schema=Schema(
            type=OpenAPIType.OBJECT, required=[form_field], properties=fields, additional_properties=False))

    @dataclass
    class VendorOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(required=True, description=description, content=content)

    return VendorOperation
