"""The message catalogue of errors people meet: each entry in Vietnamese and English, and the
wording of an error in the user's language (api/i18n.py: `?lang=`, Accept-Language, Vietnamese
by default). api/errors.py renders every error through `detail` and `problems_json`.

What is translated: the problems and errors that name their entry (`layers.errors.Message`) -
every validation error of FastAPI/pydantic (one entry per pydantic error type, `PYDANTIC`),
unknown members of a body, a parcel's attributes, the search form's own checks, a parcel that is
not there - and the detail of an error that lists its problems (`PROBLEMS`). In English the
text is the one raised (it may say more, e.g. the value given); the catalogue's English column
is what pydantic errors are raised with and the reference for the others. Errors that name no
entry keep their English detail (API clients and logs read them).
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Iterable, Mapping
from typing import Any

from gis import fmt
from layers.errors import PROBLEMS, GeoIOCError, Message, Problem

# key -> (Vietnamese, English). Placeholders {name} are filled from Message.args.
MESSAGES: dict[str, tuple[str, str]] = {
    # --- validation of parameters and bodies (pydantic error types, see PYDANTIC) -------------
    "required": ("bắt buộc", "required"),
    "unknown_member": ("không có trường này", "unknown member"),
    "text": ("phải là chuỗi ký tự", "expected text"),
    "text_too_short": ("cần ít nhất {min_length} ký tự", "at least {min_length} characters"),
    "text_too_long": ("tối đa {max_length} ký tự", "at most {max_length} characters"),
    "text_format": ("không đúng định dạng", "not in the expected format"),
    "whole_number": ("phải là số nguyên", "expected a whole number"),
    "number": ("phải là số", "expected a number"),
    "finite_number": ("phải là số hữu hạn", "expected a finite number"),
    "boolean": ("phải là true hoặc false", "expected true or false"),
    "greater_than": ("phải lớn hơn {gt}", "must be greater than {gt}"),
    "at_least": ("phải từ {ge} trở lên", "must be at least {ge}"),
    "less_than": ("phải nhỏ hơn {lt}", "must be less than {lt}"),
    "at_most": ("không được lớn hơn {le}", "must be at most {le}"),
    "multiple_of": ("phải là bội số của {multiple_of}", "must be a multiple of {multiple_of}"),
    "one_of": ("phải là một trong các giá trị: {expected}", "must be one of: {expected}"),
    "list": ("phải là danh sách", "expected a list"),
    "too_few_items": ("cần ít nhất {min_length} phần tử", "needs at least {min_length} items"),
    "too_many_items": ("tối đa {max_length} phần tử", "at most {max_length} items"),
    "object": ("phải là đối tượng JSON", "expected a JSON object"),
    "date": ("phải là ngày dạng YYYY-MM-DD", "expected a date YYYY-MM-DD"),
    "datetime": ("phải là ngày giờ ISO 8601 (YYYY-MM-DDTHH:MM:SSZ)",
                 "expected an ISO 8601 date-time (YYYY-MM-DDTHH:MM:SSZ)"),
    "json": ("không phải JSON hợp lệ", "not valid JSON"),
    "invalid": ("giá trị không hợp lệ", "invalid value"),
    "either": ("{a} hoặc {b}", "{a} or {b}"),
    # --- the parcel search form (api/routes/parcels.py, gis/parcels/search.py) -----------------
    "not_whole_number": ("'{value}' không phải là số nguyên", "'{value}' is not a whole number"),
    "out_of_range": ("{value} nằm ngoài khoảng {lo}–{hi}", "{value} is outside {lo}..{hi}"),
    "two_numbers": ("cần hai số cách nhau bằng dấu phẩy, nhận được '{value}'",
                    "expected two numbers separated by a comma, got '{value}'"),
    "not_lon_lat": ("'{value}' không phải kinh độ, vĩ độ (tọa độ VN-2000 X, Y nhập ở ô VN-2000)",
                    "'{value}' is not longitude,latitude (for VN-2000 X,Y use xy=)"),
    "not_vn2000_xy": ("'{value}' không phải tọa độ VN-2000 X (hướng Bắc), Y (hướng Đông) tính bằng mét",
                      "'{value}' is not VN-2000 X (northing), Y (easting) in metres"),
    "not_geojson": ("không phải GeoJSON", "not GeoJSON"),
    "commune_name": ("nhập mã xã 5 chữ số hoặc tên xã/phường",
                     "give a 5-digit commune code or a commune name"),
    "commune_not_found": ("không tìm thấy xã/phường '{text}' (nhập mã 5 chữ số hoặc tên)",
                          "commune '{text}' not found (give its 5-digit code or name)"),
    "land_use_code": ("'{codes}' không phải mã loại đất (ba chữ cái, ví dụ ONT; nhiều mã cách "
                      "nhau bằng dấu phẩy)",
                      "'{codes}' is not a land-use code (three letters, e.g. ONT; several "
                      "separated by commas)"),
    "owner_too_short": ("nhập ít nhất {n} chữ cái của tên", "type at least {n} letters of the name"),
    # --- a parcel's attributes (gis/parcels/edit.py) ----------------------------------------
    "unknown_field": ("không có trường này (các trường sửa được: {fields})",
                      "unknown field (fields: {fields})"),
    "commune_not_editable": ("không sửa được (xã/phường theo vị trí của thửa đất)",
                             "cannot be edited (the commune follows from where the parcel is)"),
    "server_managed": ("không sửa được (do hệ thống ghi)", "cannot be edited (set by the server)"),
    "text_or_null": ("phải là chuỗi ký tự hoặc null", "expected text or null"),
    "whole_number_between": ("phải là số nguyên từ {lo} đến {hi}",
                             "expected a whole number from {lo} to {hi}"),
    "positive_area": ("phải là diện tích dương tính bằng m²", "expected a positive area in m²"),
    "id_number": ("phải là số CCCD 12 chữ số hoặc số CMND 9 chữ số",
                  "expected a 12-digit citizen ID (CCCD) or a 9-digit identity card number"),
    "date_or_null": ("phải là ngày dạng YYYY-MM-DD hoặc null (lâu dài)",
                     "expected a date YYYY-MM-DD or null (permanent)"),
    "date_or_unknown": ("phải là ngày dạng YYYY-MM-DD hoặc null (chưa rõ)",
                        "expected a date YYYY-MM-DD or null (not known)"),
    "land_use_list": ("phải là danh sách 1 đến 4 mã loại đất, ví dụ [\"ONT\", \"CLN\"]",
                      "expected a list of 1 to 4 codes, e.g. [\"ONT\", \"CLN\"]"),
    "land_use_repeated": ("có mã bị lặp lại", "a code is repeated"),
    "land_use_unknown": ("mã loại đất không tồn tại: {codes}", "unknown code(s) {codes}"),
    "land_use_retired": ("mã loại đất đã hết hiệu lực: {codes}; dùng danh mục hiện hành",
                         "retired code(s) {codes}; use the current code list"),
    "as_of_format": ("'{value}' không phải ngày (YYYY-MM-DD) hoặc ngày giờ ISO",
                     "'{value}' is not a date (YYYY-MM-DD) or an ISO date-time"),
    # --- a parcel that is not there (gis/parcels/detail.py) ---------------------------------
    "parcel_not_found": ("không tìm thấy thửa đất {id}", "parcel {id} not found"),
    "dead_letter_not_found": ("không có thư chưa gửi được số {job}",
                              "job {job} is not a dead letter"),
    "parcel_deleted": ("không tìm thấy thửa đất {id}: thửa đã bị xóa lúc {at} (xem tại một thời "
                       "điểm trước đó)",
                       "parcel {id} not found: it was deleted at {at} (ask for it as of an "
                       "earlier time)"),
    "parcel_not_yet": ("thửa đất {id} chưa có tại thời điểm {at} (dữ liệu có từ {since})",
                       "parcel {id} did not exist at {at} (recorded from {since})"),
    # --- citizen reports and the incident workflow (gis/reports) ---------------------------
    "incident_not_found": ("không tìm thấy sự cố, phản ánh {id}", "incident {id} not found"),
    "transition_illegal": ("không thể chuyển trạng thái từ {from} sang {to}; từ {from} chỉ được "
                           "chuyển sang: {allowed}",
                           "cannot move from {from} to {to}; allowed from {from}: {allowed}"),
    "transition_reopen_expired": ("không thể mở lại: phản ánh đã được xử lý hơn {days} ngày",
                                  "cannot reopen: resolved more than {days} days ago"),
    "transition_no_agency": ("không có đơn vị xử lý lĩnh vực này tại xã; hãy chỉ định đơn vị",
                             "no agency handles this category in this commune; name one"),
    "status_unknown": ("trạng thái không hợp lệ: {value}", "unknown status {value}"),
    "bulk_refused": ("không thực hiện được cho {count}/{total} phản ánh ({ids}); chưa phản ánh nào "
                     "bị thay đổi",
                     "{count} of {total} reports cannot take this action ({ids}); nothing was "
                     "changed"),
    "bulk_item": ("phản ánh {id}: {reason}", "report {id}: {reason}"),
    "agency_unknown": ("không có đơn vị xử lý mã {value}", "unknown agency {value}"),
    "not_duplicate": ("phản ánh {id} không được đánh dấu là trùng lặp",
                      "incident {id} is not linked as a duplicate"),
    "service_unknown": ("không có lĩnh vực phản ánh mã {value}", "unknown service code {value}"),
    "attribute_unknown": ("lĩnh vực này không có thông tin bổ sung này",
                          "unknown attribute for this service"),
    "attribute_one_value": ("chỉ được chọn một giá trị", "one value expected"),
    "text_control": ("không được chứa ký tự điều khiển", "control characters are not accepted"),
    "email_format": ("không phải địa chỉ thư điện tử", "not an e-mail address"),
    "phone_format": ("không phải số điện thoại", "not a phone number"),
    "url_format": ("phải là địa chỉ http(s)", "expected an http(s) URL"),
    "lat_long_pair": ("cần cả vĩ độ (lat) và kinh độ (long)", "lat and long go together"),
    "location_required": ("cần vị trí: vĩ độ và kinh độ (lat, long), địa chỉ (address_string) "
                          "hoặc mã địa chỉ (address_id)",
                          "a location is required: lat and long, address_string or address_id"),
    "address_unknown": ("không tìm thấy địa điểm này trong tỉnh", "no such place in the province"),
    "location_outside": ("vị trí nằm ngoài địa bàn tỉnh", "the location is outside the province"),
    "request_not_found": ("không tìm thấy phản ánh {id}", "service request {id} not found"),
    "token_not_found": ("không tìm thấy mã theo dõi {id}", "token {id} not found"),
    "jurisdiction_unknown": ("không phục vụ địa bàn {value}; dùng {expected}",
                             "unknown jurisdiction_id {value}; this endpoint serves {expected}"),
    "date_range_too_long": ("khoảng thời gian không được dài quá 90 ngày",
                            "the range may not span more than 90 days"),
    "owner_forbidden": ("chỉ cán bộ địa chính được tra cứu theo tên người sử dụng đất",
                        "searching by land user needs the right to read land users' names "
                        "(land officers)"),
    # --- a citizen's photo (gis/reports/photos.py) ------------------------------------------
    "photo_too_large": ("ảnh lớn hơn {max_mb} MB", "larger than {max_mb} MB"),
    "photo_too_many_pixels": ("ảnh quá {max_mp} megapixel", "more than {max_mp} megapixels"),
    "photo_not_an_image": ("không phải ảnh JPEG, PNG hoặc WebP", "not a JPEG, PNG or WebP image"),
}

# pydantic error type -> entry of MESSAGES, and which of the error's context values it shows.
PYDANTIC: dict[str, str] = {
    "missing": "required",
    "extra_forbidden": "unknown_member",
    "string_type": "text",
    "string_too_short": "text_too_short",
    "string_too_long": "text_too_long",
    "string_pattern_mismatch": "text_format",
    "string_unicode": "text",
    "int_type": "whole_number",
    "int_parsing": "whole_number",
    "int_from_float": "whole_number",
    "int_parsing_size": "whole_number",
    "float_type": "number",
    "float_parsing": "number",
    "decimal_type": "number",
    "decimal_parsing": "number",
    "finite_number": "finite_number",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
    "greater_than": "greater_than",
    "greater_than_equal": "at_least",
    "less_than": "less_than",
    "less_than_equal": "at_most",
    "multiple_of": "multiple_of",
    "literal_error": "one_of",
    "enum": "one_of",
    "list_type": "list",
    "tuple_type": "list",
    "set_type": "list",
    "iterable_type": "list",
    "too_short": "too_few_items",
    "too_long": "too_many_items",
    "dict_type": "object",
    "mapping_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
    "date_type": "date",
    "date_parsing": "date",
    "date_from_datetime_parsing": "date",
    "date_from_datetime_inexact": "date",
    "datetime_type": "datetime",
    "datetime_parsing": "datetime",
    "datetime_from_date_parsing": "datetime",
    "datetime_object_invalid": "datetime",
    "json_invalid": "json",
    "json_type": "json",
}
# How "a, b or c" in pydantic's `expected` reads in each language.
_OR = {"vi": " hoặc ", "en": " or "}


def _arg(value: Any, lang: str) -> str:
    """An argument as the page writes it: numbers with LANG's separators (10.000 / 10,000), a
    message (the reasons of `either`) in LANG."""
    if isinstance(value, Message):
        return text(value, lang) or value.key
    if isinstance(value, dt.datetime | dt.date):
        return fmt.datetime(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return fmt.number(value, lang, 0)
    return fmt.number(value, lang, 6).rstrip("0")


def _fill(template: str, args: Mapping[str, Any]) -> str:
    """TEMPLATE with ARGS; a placeholder without a value stays as it is (never an exception)."""
    out = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(str(args[name]) if name in args else "{" + name + "}")
    return "".join(out)


def text(message: Message | None, lang: str) -> str | None:
    """The catalogue's wording of MESSAGE in LANG; None for an entry it does not have."""
    if message is None or message.key not in MESSAGES:
        return None
    vi, en = MESSAGES[message.key]
    args = {k: _arg(v, lang) for k, v in (message.args or {}).items()}
    if isinstance(args.get("expected"), str):
        args["expected"] = args["expected"].replace(" or ", _OR.get(lang, " or "))
    return _fill(en if lang == "en" else vi, args)


def reason(problem: Problem, lang: str) -> str:
    """PROBLEM's reason in LANG. English is the reason as raised (it may say more than the
    catalogue, e.g. the value given); the catalogue's English is what from_pydantic raises."""
    if lang == "en":
        return problem.reason
    return text(problem.message, lang) or problem.reason


def summary(problems: Iterable[Problem], lang: str, labels: Mapping[str, str] | None = None) -> str:
    """"field: reason; field: reason" (LABELS: what the page calls each field)."""
    labels = labels or {}
    return "; ".join(f"{labels.get(p.field, p.field)}: {reason(p, lang)}" if p.field
                     else reason(p, lang) for p in problems)


def detail(exc: GeoIOCError, lang: str, labels: Mapping[str, str] | None = None) -> str:
    """EXC's detail in LANG when the catalogue words it, else as raised. An error listing its
    problems (PROBLEMS) is their list in LANG, with a page's LABELS for the fields; in English,
    without labels, the detail as raised (it may say more, e.g. what a body should hold)."""
    if exc.message == PROBLEMS and exc.problems and (lang != "en" or labels):
        return summary(exc.problems, lang, labels)
    if lang == "en" or exc.message == PROBLEMS:
        return exc.detail
    return text(exc.message, lang) or exc.detail


def problems_json(exc: GeoIOCError, lang: str) -> list[dict[str, Any]]:
    return [{**p.as_json(), "reason": reason(p, lang)} for p in exc.problems]


def either(a: Problem, b: Problem) -> Problem:
    """One problem for a field that passed neither branch of a union (text or a list)."""
    if a.message is None or b.message is None:
        return Problem(a.field, f"{a.reason} or {b.reason}")
    return Problem(a.field, f"{a.reason} or {b.reason}",
                   message=Message("either", {"a": a.message, "b": b.message}))


def from_pydantic(field: str | None, err: Mapping[str, Any]) -> Problem:
    """One pydantic error as a Problem whose reason has a catalogue entry. The offending value
    is never echoed back (it may be huge or binary); the bounds of the rule are."""
    key = PYDANTIC.get(str(err.get("type")), "invalid")
    ctx = {k: v for k, v in (err.get("ctx") or {}).items() if isinstance(v, str | int | float)}
    message = Message(key, ctx or None)
    return Problem(field, text(message, "en") or "invalid value", message=message)
