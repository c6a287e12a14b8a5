"""OGC SensorThings API v1.1 at /sta/v1.1 (gis/sta does the work).

  GET  /sta/v1.1                              the service root: entity sets, serverSettings
  GET  /sta/v1.1/{path}                       entity sets, entities, navigation, properties,
                                              $value, $ref, with $filter $orderby $top $skip
                                              $count $select $expand
  POST /sta/v1.1/Observations                 one Observation ({"Datastream": {"@iot.id": n}, ...})
  POST /sta/v1.1/Datastreams({id})/Observations
  POST /sta/v1.1/CreateObservations           the data-array extension (an array of selfLinks or
                                              "error" in return)

Reads are open to everyone with the catalogue's rules (anonymous callers see public datastreams
only: a restricted one, and its observations, exist for nobody else by any path); creating
Observations needs the operator role (gis/sta/write.py). Other entities are not created,
changed or deleted through STA here (405): Things are the `sensors` layer's rows and the main
road segments of the `roads` layer (imports, harvests), and the rest follows them (migrations
0020 and 0024).

Errors are RFC 9457 problem details in the user's language (api/errors.py), a query option's
naming the option and the position in its text. A read that runs longer than the STA statement
timeout (setting sta_statement_timeout_ms, 10 s) is stopped: 503 with Retry-After.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import Conn, QueryModel, SettingsDep, query
from api.route_docs import JSON, ok, problems
from api.security import Who, forbidden, unauthorized
from gis import audit
from gis.sta import announce, odata, service, write
from layers.access import Principal
from layers.errors import BadRequest, Message, MethodNotAllowed, TooLarge

router = APIRouter(prefix="/sta/v1.1", tags=["sensorthings"])
ROOT = "/sta/v1.1"
MAX_BODY = 8 << 20  # a data array of 10,000 observations fits


class Options(QueryModel):
    """The OData query options (documented here; gis/sta/odata.py parses them)."""

    filter: Annotated[str | None, Field(
        alias="$filter", max_length=odata.MAX_OPTION_CHARS,
        description="a condition, e.g. `result gt 50 and phenomenonTime ge 2026-12-01T00:00:00Z`",
        examples=["result gt 50"])] = None
    orderby: Annotated[str | None, Field(alias="$orderby", max_length=odata.MAX_OPTION_CHARS,
                                         description="e.g. `phenomenonTime desc`")] = None
    top: Annotated[str | None, Field(
        alias="$top", max_length=12, description=f"page size (default {odata.DEFAULT_TOP}; pages "
        f"of at most {odata.MAX_TOP}, followed by @iot.nextLink)")] = None
    skip: Annotated[str | None, Field(alias="$skip", max_length=12,
                                      description="entities to skip")] = None
    count: Annotated[str | None, Field(
        alias="$count", max_length=5, description="true: @iot.count, exact, or absent when it "
        "cannot be counted within 1 s (see gis/sta/service.py)")] = None
    select: Annotated[str | None, Field(alias="$select", max_length=odata.MAX_OPTION_CHARS,
                                        description="properties, e.g. `id,result`")] = None
    expand: Annotated[str | None, Field(
        alias="$expand", max_length=odata.MAX_OPTION_CHARS,
        description="related entities, with options: `Datastreams($top=1;$expand=Observations)`")
    ] = None
    result_format: Annotated[str | None, Field(alias="$resultFormat", max_length=20,
                                               description="default (the only format served)")] = None


OptionsDep = Annotated[Options, query(Options)]


def base_url(settings: Any) -> str:
    return settings.base_url.rstrip("/") + ROOT


def _json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=JSON, headers=headers)


@router.get("", responses={200: ok("The service root: the entity sets and serverSettings")})
@router.get("/", include_in_schema=False)
def root(settings: SettingsDep) -> Response:
    doc = service.root_document(base_url(settings), getattr(settings, "mqtt_url", None))
    return _json(orjson.dumps(doc))


_READ = {200: ok("An entity set page, an entity, a property, its $value or $ref links"),
         **problems(400, 404, 503)}


# The two collections that are also created are declared with both methods (their 405s' Allow
# and the OpenAPI document agree); every other path is the catch-all below.
@router.get("/Observations", responses=_READ)
def read_observations(request: Request, who: Who, conn: Conn, settings: SettingsDep,
                      _options: OptionsDep) -> Response:
    return read("Observations", request, who, conn, settings, _options)


@router.get("/Datastreams({datastream_id})/Observations", responses=_READ)
def read_datastream_observations(
        datastream_id: Annotated[int, Path(ge=1, lt=1 << 21, description="the Datastream's id")],
        request: Request, who: Who, conn: Conn, settings: SettingsDep,
        _options: OptionsDep) -> Response:
    return read(f"Datastreams({datastream_id})/Observations", request, who, conn, settings,
                _options)


@router.get("/{path:path}", responses={
    200: ok("An entity set page, an entity, a property, its $value or $ref links"),
    **problems(400, 404, 503)})
def read(path: str, request: Request, who: Who, conn: Conn, settings: SettingsDep,
         _options: OptionsDep) -> Response:
    params = dict(request.query_params)
    out = service.read(conn, who, base_url(settings), path, params,
                       timeout_ms=settings.sta_statement_timeout_ms)
    if service.sensitive_reader(conn, who) and service.touches_datastreams(path, params):
        audit.record(conn, who, "read", request=request, layer="sensors", status=200,
                     target=audit.read_target("sta", filter={"path": path, **params}))
    return Response(out.body, media_type=out.media_type)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise TooLarge(f"request body larger than {MAX_BODY} bytes",
                       message=Message("body_too_large", {"max": MAX_BODY}))
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"body is not JSON: {e}", message=Message("body_not_json")) from None


def _writer(request: Request, who: Principal) -> None:
    if who.anonymous:
        raise unauthorized("sign-in required", request, Message("auth_required"))
    if not write.may_write(who):
        raise forbidden("requires role operator",
                        Message("role_required", {"roles": {"vi": "cán bộ điều hành",
                                                            "en": "operator"}}))


_CREATED = {
    201: ok("The Observation created (Location: its URL)"),
    200: ok("The Observation was already stored (same Datastream and phenomenonTime): nothing "
            "stored twice"),
    **problems(400, 401, 403, 404, 413, 422)}


@router.post("/Observations", status_code=201, responses=_CREATED)
async def create_observation(request: Request, who: Who, conn: Conn) -> Response:
    """One Observation: {"Datastream": {"@iot.id": n}, "phenomenonTime", "result", ...}."""
    _writer(request, who)
    return await _run_create(request, who, conn, "Observations", None)


@router.post("/Datastreams({datastream_id})/Observations", status_code=201, responses=_CREATED)
async def create_datastream_observation(
        datastream_id: Annotated[int, Path(ge=1, lt=1 << 21, description="the Datastream's id")],
        request: Request, who: Who, conn: Conn) -> Response:
    """One Observation of this Datastream."""
    _writer(request, who)
    return await _run_create(request, who, conn, "Observations", datastream_id)


@router.post("/CreateObservations", status_code=201, responses={
    201: ok("The selfLink of each observation, \"error\" for those refused (STA 1.1, 14.2)"),
    **problems(400, 401, 403, 413)})
async def create_observations(request: Request, who: Who, conn: Conn) -> Response:
    """The data-array extension: [{"Datastream", "components", "dataArray"}, ...]."""
    _writer(request, who)
    return await _run_create(request, who, conn, "CreateObservations", None)


_CREATABLE = re.compile(r"Observations|Datastreams\(\d{1,7}\)/Observations")


def _allow(path: str) -> str:
    """The methods of the resource at PATH: Observations collections are also created."""
    if path == "CreateObservations":
        return "POST"
    return "GET, POST" if _CREATABLE.fullmatch(path) else "GET"


@router.api_route("/{path:path}", methods=["POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                  include_in_schema=False)
def not_writable(path: str, request: Request) -> Response:
    """Things, Locations... are not created, changed or deleted through STA here (405). Every
    method but GET and the creations ends here, so that Allow names what the resource takes
    (Starlette's own 405 would list this route's methods)."""
    clean = path.strip("/")
    raise MethodNotAllowed(
        f"{clean} does not take {request.method}: only Observations can be created",
        message=Message("sta_method", {"path": clean, "method": request.method}),
        headers={"Allow": _allow(clean)})


async def _run_create(request: Request, who: Principal, conn: Any, path: str,
                      datastream: int | None) -> Response:
    body = await _body(request)
    settings = request.app.state.settings
    base = base_url(settings)
    if path == "CreateObservations":
        items = _data_arrays(body)
        outcomes = await run_in_threadpool(write.create, conn, who, settings, items, request)
        _announce(settings, base, outcomes)
        links = [f"{base}/Observations({o.id})" if o.id is not None else "error" for o in outcomes]
        return _json(orjson.dumps(links), 201)
    if not isinstance(body, dict):
        raise BadRequest("the body must be an Observation object",
                         message=Message("sta_body", {"what": "Observation"}))
    if datastream is None:
        ds = body.get("Datastream")
        ds_id = ds.get("@iot.id") if isinstance(ds, dict) else None
        if isinstance(ds_id, bool) or not isinstance(ds_id, int):
            raise BadRequest("Datastream: {\"@iot.id\": <id>} is required", parameter="Datastream",
                             message=Message("sta_datastream_required"))
        datastream = ds_id
    obj = {k: v for k, v in body.items() if k != "Datastream"}
    outcome = (await run_in_threadpool(write.create, conn, who, settings, [(datastream, obj)],
                                       request))[0]
    if outcome.error == "unknown_datastream":
        raise write.not_found(datastream)
    if outcome.error is not None:
        raise write.refusal(outcome.error)
    _announce(settings, base, [outcome])
    location = f"{base}/Observations({outcome.id})"
    entity = await run_in_threadpool(service.read, conn, who, base, f"Observations({outcome.id})",
                                     {})
    return _json(entity.body, 201 if outcome.created else 200, {"Location": location})


def _announce(settings: Any, base: str, outcomes: list[write.Outcome]) -> None:
    """The observations this request stored, to MQTT subscribers (gis/sta/announce.py)."""
    announce.announce(settings, [
        (o.row.datastream_id, announce.observation(base, o.id, o.row))
        for o in outcomes if o.created and o.row is not None and o.id is not None])


def _data_arrays(body: Any) -> list[tuple[int, Any]]:
    """The (datastream, Observation object) pairs of a CreateObservations body (STA 1.1, 14.2):
    [{"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime", "result", ...],
      "dataArray": [[...], ...]}, ...]."""
    if not isinstance(body, list):
        raise BadRequest("the body must be an array of data arrays",
                         message=Message("sta_body", {"what": "[{Datastream, components, dataArray}]"}))
    items: list[tuple[int, Any]] = []
    for block in body:
        ds = block.get("Datastream") if isinstance(block, dict) else None
        ds_id = ds.get("@iot.id") if isinstance(ds, dict) else None
        components = block.get("components") if isinstance(block, dict) else None
        rows = block.get("dataArray") if isinstance(block, dict) else None
        if isinstance(ds_id, bool) or not isinstance(ds_id, int) or not isinstance(components, list) \
                or not all(isinstance(c, str) for c in components) or not isinstance(rows, list):
            raise BadRequest("each data array needs Datastream {\"@iot.id\"}, components and "
                             "dataArray", message=Message(
                                 "sta_body", {"what": "[{Datastream, components, dataArray}]"}))
        for row in rows:
            if not isinstance(row, list) or len(row) != len(components):
                items.append((ds_id, None))  # refused alone: "error" in its place
                continue
            obj: dict[str, Any] = {}
            for name, value in zip(components, row, strict=True):
                if name in ("FeatureOfInterest/id", "FeatureOfInterest/@iot.id"):
                    obj["FeatureOfInterest"] = {"@iot.id": value}
                elif name in ("phenomenonTime", "result", "resultTime", "parameters",
                              "resultQuality", "validTime"):
                    obj[name] = value
            items.append((ds_id, obj))
            if len(items) > write.MAX_OBSERVATIONS:
                raise BadRequest(f"at most {write.MAX_OBSERVATIONS} observations per request",
                                 message=Message("sta_too_many", {"n": write.MAX_OBSERVATIONS}))
    return items
