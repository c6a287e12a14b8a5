"""The message catalogue of errors people meet: each entry in Vietnamese and English, and the
wording of an error in the user's language (api/i18n.py: `?lang=`, Accept-Language, Vietnamese
by default). api/errors.py renders every error through `detail`, `problems_json` and `title`;
the import report (api/routes/imports.py) words its file error and rejected rows with `text`.

What is translated: the problems and errors that name their entry (`layers.errors.Message`) -
every validation error of FastAPI/pydantic (one entry per pydantic error type, `PYDANTIC`),
unknown members of a body, a parcel's attributes, the search form's own checks, a parcel that is
not there, geometries from clients, CQL2 filters, the shared bbox/datetime/CRS parameters,
exports, imports (the file and each refused row) - the detail of an error that lists its
problems (`PROBLEMS`), and the problem+json `title` (by status). An error class may name a
fallback entry (`GeoIOCError.fallback`: what kind of input was refused) for its rarer cases. In
English the text is the one raised (it may say more, e.g. the value given); the catalogue's
English column is what pydantic errors are raised with and the reference for the others.
Errors that name no entry and have no fallback keep their English detail.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Iterable, Mapping
from typing import Any

from gis import fmt
from gis.io.jobs import ExportJob, message_entry
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
    "week": ("phải là tuần ISO (2026-W49) hoặc một ngày trong tuần (YYYY-MM-DD)",
             "expected an ISO week (2026-W49) or a date in it (YYYY-MM-DD)"),
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
    # --- editing a parcel (gis/parcels/edit.py, PATCH /api/parcels/{id}) ---------------------
    "if_match_format": ("{value} không phải số phiên bản của thửa đất (ví dụ \"3\")",
                        "{value} is not a parcel version (e.g. \"3\")"),
    "version_number": ("{value} không phải số phiên bản (1, 2, ...)",
                       "{value} is not a version number (1, 2, ...)"),
    "version_mismatch": ("If-Match ghi phiên bản {header} nhưng nội dung gửi ghi phiên bản {body}",
                         "If-Match says version {header} but the body says {body}"),
    "version_required": ("cần gửi kèm phiên bản đã sửa (If-Match: \"<phiên bản>\" hoặc \"version\" "
                         "trong nội dung) để không ghi đè thay đổi người khác vừa lưu",
                         "send the version you edited (If-Match: \"<version>\" or \"version\" in "
                         "the body), so that a change made meanwhile by someone else is not "
                         "overwritten"),
    "nothing_to_change": ("không có gì để thay đổi: gửi \"properties\" và/hoặc \"geometry\"",
                          "nothing to change: give properties and/or geometry"),
    "field_forbidden": ("bạn không có quyền sửa trường {field}", "you may not change {field}"),
    "version_conflict": ("thửa đất {id} vừa được người khác sửa: bạn sửa phiên bản {sent}, phiên "
                         "bản hiện tại là {current}; hãy tải lại thửa đất và sửa lại",
                         "parcel {id} was changed by someone else: you edited version {sent}, the "
                         "current version is {current}; reload it and apply your change again"),
    "version_conflict_at": ("thửa đất {id} vừa được người khác sửa: bạn sửa phiên bản {sent}, "
                            "phiên bản hiện tại là {current} (lưu lúc {at}); hãy tải lại thửa đất "
                            "và sửa lại",
                            "parcel {id} was changed by someone else: you edited version {sent}, "
                            "the current version is {current} (saved at {at}); reload it and apply "
                            "your change again"),
    "parcel_key_taken": ("tờ {sheet} thửa {number} đã là thửa đất mã {id} của xã/phường {commune}",
                         "sheet {sheet} parcel {number} is already parcel {id} of commune {commune}"),
    "parcel_key_taken_old": ("tờ {sheet} thửa {number} đã là thửa đất mã {id} của xã/phường "
                             "{commune} (mã cũ {old})",
                             "sheet {sheet} parcel {number} is already parcel {id} of commune "
                             "{commune} (old {old})"),
    "legal_order": ("phiên bản có hiệu lực từ {new} không thể thay phiên bản có hiệu lực từ "
                    "{current} (các phiên bản nối tiếp nhau theo thứ tự pháp lý)",
                    "a version valid from {new} cannot replace the version valid from {current} "
                    "(versions follow each other in legal order)"),
    "parcel_refused": ("cơ sở dữ liệu từ chối thay đổi (chi tiết kỹ thuật bằng tiếng Anh với "
                       "lang=en)", "rejected by the database"),
    "area_differs": ("diện tích pháp lý {legal} m² chênh với diện tích tính từ hình thể {computed} m² "
                     "quá {tolerance} m²",
                     "legal area {legal} m² differs from the computed area {computed} m² by more "
                     "than {tolerance} m²"),
    # --- signing in and access (gis/auth/errors.py REASONS, api/security.py) ------------------
    "auth_required": ("cần đăng nhập", "sign-in required"),
    "auth_rejected": ("thông tin đăng nhập không được chấp nhận", "credentials not accepted"),
    "auth_wrong_password": ("sai tên đăng nhập hoặc mật khẩu", "wrong username or password"),
    "auth_user_disabled": ("tài khoản đã bị vô hiệu hóa", "user disabled"),
    "auth_user_gone": ("tài khoản không còn tồn tại", "user not found"),
    "auth_malformed": ("thông tin đăng nhập không đúng định dạng (dùng \"Bearer\", \"Basic\" "
                       "hoặc \"X-API-Key\")",
                       "malformed credentials (use \"Bearer\", \"Basic\" or \"X-API-Key\")"),
    "auth_key_invalid": ("khóa API không hợp lệ", "invalid API key"),
    "auth_key_revoked": ("khóa API đã bị thu hồi", "API key revoked"),
    "auth_key_expired": ("khóa API đã hết hạn", "API key expired"),
    "auth_key_other_user": ("khóa API thuộc về người dùng khác", "API key belongs to another user"),
    "auth_token_invalid": ("mã truy cập không hợp lệ; hãy đăng nhập lại",
                           "invalid token; sign in again"),
    "auth_token_expired": ("mã truy cập đã hết hạn; hãy đăng nhập lại", "token expired"),
    "auth_session_gone": ("không tìm thấy phiên đăng nhập; hãy đăng nhập lại", "session not found"),
    "auth_signed_out": ("phiên đăng nhập đã kết thúc (đã đăng xuất)", "session ended (signed out)"),
    "auth_session_expired": ("phiên đăng nhập đã hết hạn; hãy đăng nhập lại", "session expired"),
    "auth_refresh_reused": ("mã làm mới đã được dùng một lần; phiên đăng nhập đã bị thu hồi",
                            "refresh token already used; session revoked"),
    "auth_sign_in_pages": ("hãy đăng nhập bằng tên đăng nhập và mật khẩu GeoIOC",
                           "sign in with your GeoIOC user name and password"),
    "owner_sign_in": ("hãy đăng nhập với vai trò cán bộ địa chính để tìm theo tên người sử dụng đất",
                      "sign in as a land officer to search by land user"),
    "sign_in_locked": ("đăng nhập sai quá nhiều lần; thử lại sau {s} giây",
                       "too many failed sign-ins; retry in {s} s"),
    "role_required": ("chức năng này dành cho: {roles}", "requires role {roles}"),
    "forbidden": ("bạn không có quyền thực hiện thao tác này", "forbidden"),
    "refresh_token_required": ("cần gửi refresh_token", "refresh_token is required"),
    "signout_needs_token": ("cần gửi refresh_token hoặc Authorization: Bearer <mã truy cập>",
                            "send refresh_token or Authorization: Bearer <access token>"),
    # --- incident analytics and the map's API (api/routes/incident_analytics.py, map_api.py) -
    "search_text": ("nhập tên địa danh, số tờ/số thửa hoặc tọa độ",
                    "type a place name, sheet/parcel numbers or coordinates"),
    "commune_matches": ("{value} khớp với {n} xã/phường; hãy nhập mã xã",
                        "{value} matches {n} communes; give its code"),
    "date_or_datetime": ("{value} không phải ngày (YYYY-MM-DD) hoặc ngày giờ ISO",
                         "{value} is not an ISO date or date-time"),
    "unknown_value": ("không có giá trị {value}; các giá trị: {expected}",
                      "unknown value {value}; expected one of {expected}"),
    "window_order": ("khoảng thời gian phải bắt đầu trước khi kết thúc",
                     "the window must start before it ends"),
    "window_too_long": ("khoảng thời gian dài tối đa mười năm", "the window may be at most ten years long"),
    "boundaries_or_as_of": ("chỉ chọn một trong hai: bộ ranh giới (boundaries) hoặc ngày (as_of)",
                            "give either boundaries or as_of, not both"),
    "unit_or_commune": ("chỉ chọn một trong hai: unit hoặc commune", "give either unit or commune, not both"),
    "too_many_cells": ("lưới quá lớn ({cells} ô, tối đa {max}); hãy chọn ô lớn hơn",
                       "{cells} cells, at most {max}: choose a larger cell size"),
    "year_window": ("khoảng thời gian dài hơn một năm trùng với cùng kỳ năm trước; hãy so với kỳ "
                    "liền trước (against=previous)",
                    "a window longer than a year overlaps the same window a year earlier; use "
                    "against=previous"),
    "unit_not_found": ("không tìm thấy đơn vị hành chính {code} vào ngày {day}",
                       "administrative unit {code} not found on {day}"),
    "not_identified": ("lớp {layer} không tra cứu được bằng cách nhấn trên bản đồ",
                       "{layer} is not identified by the server"),
    "bbox_required": ("bắt buộc (vùng đang xem để đếm)", "required (the view to count in)"),
    "layer_ids": ("cần từ 1 đến {max} mã lớp", "give 1 to {max} layer ids"),
    # --- hot spots (api/routes/hotspots.py) --------------------------------------------------
    "grid_too_large": ("lưới sẽ có khoảng {cells} ô, vượt quá tối đa {max}; hãy chọn ô lớn hơn hoặc "
                       "vùng nhỏ hơn", "the grid would have about {cells} cells, over the maximum "
                       "{max}; choose larger cells or a smaller area"),
    "cube_too_large": ("số ô × số kỳ vượt quá {max}; hãy chọn ô lớn hơn, kỳ theo tháng hoặc "
                       "khoảng thời gian ngắn hơn", "cells × bins is over {max}; choose larger "
                       "cells, monthly bins or a shorter window"),
    "permutations_value": ("phải là 'auto', 'analytic', 0 hoặc từ {min} đến {max}",
                           "expected 'auto', 'analytic', 0 or {min}..{max}"),
    "permutations_too_costly": ("số ô × số hoán vị vượt quá {max}; hãy giảm số hoán vị hoặc dùng "
                                "'auto'", "cells × permutations is over {max}; use fewer "
                                "permutations or 'auto'"),
    "too_few_bins": ("khoảng thời gian chỉ có {n} kỳ; cần ít nhất {min} kỳ (khoảng dài hơn hoặc kỳ "
                     "theo tuần)", "the window holds {n} bins; at least {min} are needed (a "
                     "longer window or weekly bins)"),
    "cell_not_found": ("ô {cell} không thuộc lưới", "cell {cell} is not in the grid"),
    # --- load and outages (api/middleware.py, api/errors.py) --------------------------------
    "too_many_requests": ("quá nhiều yêu cầu; hãy thử lại sau", "too many requests; try again later"),
    "rate_limited": ("quá nhiều yêu cầu; hãy thử lại sau {s} giây (đăng nhập để được giới hạn cao "
                     "hơn)", "rate limit exceeded; sign in for a higher limit (retry in {s} s)"),
    "rate_limited_signed_in": ("quá nhiều yêu cầu; hãy thử lại sau {s} giây",
                               "rate limit exceeded (retry in {s} s)"),
    "unavailable": ("dịch vụ tạm thời gián đoạn; hãy thử lại sau", "service unavailable; try again later"),
    "db_unreachable": ("hiện không kết nối được cơ sở dữ liệu; hãy thử lại sau ít phút",
                       "the database is not reachable right now"),
    "db_timeout": ("truy vấn chạy quá lâu; hãy thu hẹp yêu cầu (ít lớp, vùng hoặc khoảng thời gian "
                   "hơn)", "the query took too long; narrow the request"),
    "busy": ("hệ thống đang bận; hãy thử lại sau giây lát", "the service is busy; try again shortly"),
    "internal_error": ("lỗi hệ thống mã {id}; quản trị viên tra được chi tiết trong nhật ký theo mã này",
                       "internal error {id}; the administrators can find it in the log"),
    "db_input": ("cơ sở dữ liệu không xử lý được dữ liệu gửi (chi tiết kỹ thuật bằng tiếng Anh với "
                 "lang=en)", "the database could not process the input"),
    "nul_character": ("chứa ký tự NUL (U+0000), không lưu được", "contains a NUL character (U+0000)"),
    # --- an export job's status (gis/io/jobs.py message_entry) -------------------------------
    "job_done": ("{rows} đối tượng", "{rows} features"),
    "job_internal_error": ("lỗi hệ thống ({kind}); hãy báo quản trị viên",
                           "internal error: {kind}"),
    "job_rerun": ("chạy lại sau khi bị gián đoạn (lần {attempt})",
                  "run again after an interruption (attempt {attempt})"),
    "job_stopped": ("đã dừng {n} lần cùng tiến trình máy chủ; không chạy lại nữa",
                    "stopped {n} times with its server process; not run again"),
    "job_user_gone": ("người dùng {user} không còn tồn tại hoặc đã bị vô hiệu hóa; không chạy lại",
                      "user {user} no longer exists or is disabled: not run again"),
    "job_result_gone": ("công việc xuất {id} không thành công: không có tệp kết quả",
                        "export job {id} failed: there is no file"),
    "job_result_not_ready": ("công việc xuất {id} chưa xong; hãy thử lại khi đã hoàn tất",
                             "export job {id} is not finished yet; try again when it is"),
    "job_not_found": ("không tìm thấy công việc xuất {id}", "export job {id} not found"),
    "job_failed": ("xuất dữ liệu không thành công (chi tiết kỹ thuật bằng tiếng Anh với lang=en)",
                   "the export failed"),
    # --- imports: warnings (gis/io/imports: report.Reason) ----------------------------------
    "import_w_converted": ("{file}: văn bản đã được chuyển từ {encoding} sang Unicode",
                           "{file}: text converted from {encoding} to Unicode"),
    "import_w_not_utf8": ("{file}: văn bản không phải UTF-8; đã đọc theo bảng mã {encoding}",
                          "{file}: text is not UTF-8; read as {encoding}"),
    "import_w_crs_name": ("{file}: hệ tọa độ EPSG:{code} lấy từ tên tệp",
                          "{file}: CRS EPSG:{code} taken from the file name"),
    "import_w_crs_differs": ("tệp ghi một hệ tọa độ khác; đã dùng {asked} như đã chọn (crs)",
                             "the file says another CRS; used {asked} as asked (crs)"),
    "import_w_more_refused": ("đã dừng tìm sau {n} dòng bị cơ sở dữ liệu từ chối; có thể còn nữa",
                              "stopped looking after {n} rows refused by the database; there may "
                              "be more"),
    "import_w_no_column": ("không có cột {column} ({field}): để trống cho mọi dòng",
                           "no column {column} ({field}): taken as empty for every row"),
    "import_w_system_column": ("cột {column} ({field}) do hệ thống ghi: bỏ qua",
                               "column {column} ({field}) is maintained by the system: ignored"),
    "import_w_ignored": ("các cột không có trong lớp {layer}, bỏ qua: {columns}",
                         "columns not in layer {layer}, ignored: {columns}"),
    # --- a request's body (api/route_docs.py json_body) --------------------------------------
    "body_too_large": ("nội dung gửi lớn hơn {max} byte", "request body larger than {max} bytes"),
    "body_not_json": ("nội dung gửi không phải JSON hợp lệ (chi tiết kỹ thuật bằng tiếng Anh với "
                      "lang=en)", "body is not JSON"),
    "body_not_object": ("nội dung gửi phải là một đối tượng JSON", "body: expected a JSON object"),
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
    # --- sensor alerts (gis/sensors/alerts.py) ---------------------------------------------
    "alert_not_found": ("không tìm thấy cảnh báo {id}", "alert {id} not found"),
    "alert_closed": ("cảnh báo {id} đã đóng lúc {at} (giờ Việt Nam): không cần xác nhận",
                     "alert {id} closed at {at} (Vietnam time): nothing to acknowledge"),
    "alert_acknowledged": ("cảnh báo {id} đã được {by} xác nhận lúc {at} (giờ Việt Nam)",
                           "alert {id} was acknowledged by {by} at {at} (Vietnam time)"),
    # --- cameras: health, snapshots, detections (gis/sensors/cameras.py) --------------------
    "camera_not_found": ("không tìm thấy camera {code}", "camera {code} not found"),
    "camera_no_snapshot": ("camera {code} chưa có ảnh chụp", "no snapshot of camera {code}"),
    "camera_key_other": ("khóa API này chỉ dùng cho camera khác, không phải {code}",
                         "this API key is limited to other cameras than {code}"),
    "camera_push_role": ("cần vai trò cán bộ điều hành hoặc khóa API dành riêng cho camera này",
                         "requires role operator or an API key limited to this camera"),
    "camera_number": ("phải là số từ {lo} đến {hi}", "expected a number from {lo} to {hi}"),
    "camera_time": ("phải là thời điểm ISO 8601 có múi giờ (ví dụ 2026-12-03T08:00:00+07:00)",
                    "expected ISO 8601 with a UTC offset (e.g. 2026-12-03T08:00:00+07:00)"),
    "camera_time_old": ("thời điểm quá xa trong quá khứ", "too far in the past"),
    "camera_category": ("cần mã loại phát hiện (ví dụ traffic_accident)",
                        "required: a category code (e.g. traffic_accident)"),
    "camera_category_unknown": ("không có loại phát hiện '{value}' (các loại: {codes})",
                                "unknown category '{value}' (categories: {codes})"),
    "camera_attributes": ("phải là đối tượng JSON không quá {max} byte",
                          "expected a JSON object of at most {max} bytes"),
    "camera_base64": ("phải là ảnh JPEG hoặc PNG mã hóa base64",
                      "expected a base64 JPEG or PNG"),
    "camera_content_type": ("gửi ảnh JPEG hoặc PNG (Content-Type image/jpeg hoặc image/png)",
                            "send a JPEG or PNG image (Content-Type image/jpeg or image/png)"),
    "image_not_jpeg_png": ("không phải ảnh JPEG hoặc PNG", "not a JPEG or PNG image"),
    "detection_not_found": ("không tìm thấy phát hiện {id}", "detection {id} not found"),
    "detection_decided": ("phát hiện {id} đã được xử lý ({status}) bởi {by} lúc {at} "
                          "(giờ Việt Nam)",
                          "detection {id} was already decided ({status}) by {by} at {at} "
                          "(Vietnam time)"),
    # --- the live map's chart (gis/sensors/series.py) ----------------------------------------
    "datastream_not_found": ("không tìm thấy chuỗi số liệu {id}", "datastream {id} not found"),
    "series_range_or_period": ("chọn khoảng có sẵn (range) hoặc thời điểm bắt đầu và kết thúc "
                               "(start, end), không chọn cả hai",
                               "give range, or start and end, not both"),
    "series_start_required": ("bắt buộc khi không chọn khoảng có sẵn (day, week, month)",
                              "required without range (day, week or month)"),
    # --- the transparency figures (api/routes/transparency.py) --------------------------------
    "period_empty": ("ngày kết thúc ({end}) phải sau ngày bắt đầu ({start})",
                     "end ({end}) must be after start ({start})"),
    "period_too_long": ("khoảng thời gian không được dài quá {days} ngày",
                        "the period may not span more than {days} days"),
    "owner_forbidden": ("chỉ cán bộ địa chính được tra cứu theo tên người sử dụng đất",
                        "searching by land user needs the right to read land users' names "
                        "(land officers)"),
    # --- a citizen's photo (gis/reports/photos.py) ------------------------------------------
    "photo_too_large": ("ảnh lớn hơn {max_mb} MB", "larger than {max_mb} MB"),
    "photo_too_many_pixels": ("ảnh quá {max_mp} megapixel", "more than {max_mp} megapixels"),
    "photo_not_an_image": ("không phải ảnh JPEG, PNG hoặc WebP", "not a JPEG, PNG or WebP image"),
    "unknown_parameter": ("không có tham số này (các tham số: {names})",
                          "unknown parameter (parameters: {names})"),
    # --- the problem+json `title`: the kind of error, by status (api/errors.py) -------------
    "status_300": ("Có nhiều kết quả phù hợp", "Multiple choices"),
    "status_400": ("Yêu cầu không hợp lệ", "Bad request"),
    "status_401": ("Cần đăng nhập", "Unauthorized"),
    "status_403": ("Không có quyền truy cập", "Forbidden"),
    "status_404": ("Không tìm thấy", "Not found"),
    "status_405": ("Phương thức không được hỗ trợ", "Method not allowed"),
    "status_406": ("Không có định dạng phù hợp", "Not acceptable"),
    "status_409": ("Xung đột dữ liệu", "Conflict"),
    "status_413": ("Nội dung quá lớn", "Content too large"),
    "status_415": ("Kiểu nội dung không được hỗ trợ", "Unsupported media type"),
    "status_422": ("Dữ liệu không hợp lệ", "Unprocessable content"),
    "status_428": ("Cần chỉ rõ phiên bản được sửa", "Precondition required"),
    "status_429": ("Quá nhiều yêu cầu", "Too many requests"),
    "status_500": ("Lỗi hệ thống", "Internal server error"),
    "status_503": ("Dịch vụ tạm thời gián đoạn", "Service unavailable"),
    "status_other": ("Có lỗi", "Error"),
    # --- geometries from clients (gis/parcels/geometry.py, gis/parcels/edit.py) -------------
    "geometry_invalid": ("hình thể không hợp lệ", "invalid geometry"),
    "geometry_object": ("phải là đối tượng GeoJSON Polygon hoặc MultiPolygon",
                        "expected a GeoJSON Polygon or MultiPolygon object"),
    "geometry_type": ("kiểu {kind} không phải Polygon hoặc MultiPolygon",
                      "type {kind} is not a Polygon or MultiPolygon"),
    "geometry_no_coordinates": ("thiếu tọa độ", "without coordinates"),
    "geometry_no_rings": ("đa giác {i} không có vòng nào", "polygon {i} has no rings"),
    "ring_outer": ("vòng ngoài của đa giác {i}", "polygon {i} outer ring"),
    "ring_hole": ("lỗ thứ {j} của đa giác {i}", "polygon {i} hole {j}"),
    "geometry_ring_list": ("{ring} không phải danh sách các điểm", "{ring} is not a list of positions"),
    "geometry_position": ("điểm thứ {k} của {ring} không phải cặp tọa độ [x, y]",
                          "{ring} position {k} is not a position [x, y]"),
    "geometry_coordinate": ("điểm thứ {k} của {ring} có tọa độ không phải là số",
                            "{ring} position {k} has a non-numeric coordinate"),
    "geometry_vertices": ("quá {n} đỉnh", "more than {n} vertices"),
    "geometry_ring_short": ("{ring} chỉ có {n} điểm; một vòng cần ít nhất 4 (3 đỉnh và điểm đầu "
                            "lặp lại ở cuối)",
                            "{ring} has {n} positions; a ring needs at least 4 (3 corners and the "
                            "first repeated at the end)"),
    "geometry_ring_open": ("{ring} không khép kín (lặp lại điểm đầu ở cuối vòng)",
                           "{ring} is not closed (repeat the first position at the end)"),
    "geometry_not_lon_lat": ("{ring} có điểm không phải kinh độ, vĩ độ (tọa độ VN-2000 thì ghi "
                             "rõ \"crs\")",
                             "{ring} has a position that is not longitude, latitude (for VN-2000 "
                             "coordinates give \"crs\")"),
    "geometry_no_area": ("đa giác không có diện tích", "the polygon has no area"),
    "geometry_transform": ("hình thể không còn hợp lệ khi chuyển sang kinh độ, vĩ độ; hãy bỏ các "
                           "đỉnh gần trùng nhau",
                           "the geometry becomes invalid when transformed to longitude, latitude; "
                           "remove near-duplicate vertices"),
    "geometry_geos": ("hình thể không hợp lệ: {reason}", "invalid geometry: {reason}"),
    "geometry_geos_at": ("hình thể không hợp lệ: {reason} tại {where}",
                         "invalid geometry: {reason} at {where}"),
    "geos_self_intersection": ("tự cắt nhau", "self-intersection"),
    "geos_ring_self_intersection": ("một vòng tự cắt chính nó", "ring self-intersection"),
    "geos_too_few_points": ("quá ít điểm", "too few points"),
    "geos_hole_outside": ("lỗ nằm ngoài vòng ngoài", "hole lies outside the outer ring"),
    "geos_nested_holes": ("các lỗ lồng vào nhau", "nested holes"),
    "geos_disconnected": ("phần bên trong bị chia cắt", "the interior is disconnected"),
    "geos_nested_shells": ("các vòng ngoài lồng vào nhau", "nested outer rings"),
    "geos_duplicate_rings": ("có vòng trùng lặp", "duplicate rings"),
    "geos_invalid_coordinate": ("tọa độ không hợp lệ", "invalid coordinate"),
    "geos_not_closed": ("vòng không khép kín", "a ring is not closed"),
    "geos_other": ("vi phạm quy tắc hình học OGC", "breaks the OGC geometry rules"),
    "location": ("kinh độ {lon}, vĩ độ {lat} (VN-2000 EPSG:{srid} X = {x} m, Y = {y} m)",
                 "lon {lon}, lat {lat} (VN-2000 EPSG:{srid} X = {x} m, Y = {y} m)"),
    "geometry_no_boundary": ("xã/phường {code} chưa có ranh giới hiện hành để kiểm tra thửa đất",
                             "commune {code} has no current boundary to check the parcel against"),
    "era_current": ("hiện hành", "current"),
    "era_old": ("trước năm 2025", "pre-2025"),
    "geometry_outside_commune": ("{area} m² nằm ngoài xã/phường {code} ({name}, {era}), ví dụ tại "
                                 "{where}",
                                 "{area} m² lies outside commune {code} ({name}, {era}), e.g. at "
                                 "{where}"),
    "geometry_overlap": ("chồng lấn thửa {parcel} tờ {sheet} của xã/phường {commune} (mã {id}) "
                         "{area} m² quanh {where}",
                         "overlaps parcel {parcel} on sheet {sheet} of commune {commune} (id {id}) "
                         "by {area} m² around {where}"),
    "geometry_crs": ("hệ tọa độ {value} không được hỗ trợ (kinh độ, vĩ độ EPSG:4326 hoặc VN-2000 "
                     "của tỉnh EPSG:{srid}, x hướng Đông, y hướng Bắc)",
                     "{value} is not supported (lon/lat EPSG:4326 or the province's VN-2000 "
                     "EPSG:{srid}, x = easting, y = northing)"),
    "search_area": ("vùng tìm rộng {area} km²; chỉ tìm trong vùng đến {max} km² (dùng OGC API "
                    "cho vùng lớn hơn)",
                    "the area is {area} km²; search areas up to {max} km² (use the OGC API "
                    "for more)"),
    # --- CQL2 filters (layers/cql2.py) ------------------------------------------------------
    "cql2_invalid": ("bộ lọc CQL2 không hợp lệ (chi tiết kỹ thuật bằng tiếng Anh với lang=en)",
                     "invalid CQL2 filter"),
    "cql2_syntax": ("lỗi cú pháp: {what} không đúng chỗ ở vị trí {position} (gần {near})",
                    "syntax error: unexpected {what} at position {position} (near {near})"),
    "cql2_syntax_end": ("lỗi cú pháp: bộ lọc kết thúc khi chưa đủ điều kiện",
                        "syntax error: unexpected end of filter"),
    "cql2_unknown_property": ("không có thuộc tính {name}; các thuộc tính lọc được: {queryable}",
                              "unknown property {name}; queryable properties: {queryable}"),
    "cql2_function": ("không hỗ trợ hàm {name}(); các hàm được hỗ trợ: CASEI, ACCENTI",
                      "unsupported function {name}(); supported functions: CASEI, ACCENTI"),
    "cql2_date": ("ngày {value} không hợp lệ: dùng dạng YYYY-MM-DD",
                  "invalid date {value}: use YYYY-MM-DD"),
    "cql2_timestamp": ("thời điểm {value} không hợp lệ: cần có cả giờ",
                       "invalid timestamp {value}: include a time"),
    "cql2_json": ("JSON không hợp lệ ở dòng {line}, cột {column}",
                  "invalid JSON at line {line}, column {column}"),
    "cql2_nested": ("bộ lọc lồng nhau quá sâu", "the filter is nested too deeply"),
    "cql2_too_long": ("bộ lọc dài quá {n} ký tự", "the filter is longer than {n} characters"),
    "cql2_empty": ("bộ lọc trống", "empty filter"),
    "cql2_like_long": ("mẫu LIKE dài quá {n} ký tự", "LIKE pattern longer than {n} characters"),
    "cql2_like_wildcards": ("mẫu LIKE có {n} ký tự đại diện (tối đa {max})",
                            "LIKE pattern has {n} wildcards (at most {max})"),
    "cql2_language": ("ngôn ngữ bộ lọc {value} không được hỗ trợ; dùng cql2-text hoặc cql2-json",
                      "unsupported filter language {value}; use cql2-text or cql2-json"),
    "cql2_crs": ("hệ tọa độ của bộ lọc EPSG:{srid} không được hỗ trợ",
                 "unsupported filter CRS EPSG:{srid}"),
    # --- SensorThings API query options and paths (gis/sta) --------------------------------
    "sta_invalid": ("tùy chọn truy vấn SensorThings không hợp lệ (chi tiết kỹ thuật bằng tiếng Anh "
                    "với lang=en)", "invalid SensorThings query option"),
    "sta_syntax": ("lỗi cú pháp: {near} không đúng chỗ ở vị trí {position} (cần {expected})",
                   "syntax error: unexpected {near} at position {position} (expected {expected})"),
    "sta_syntax_end": ("lỗi cú pháp: kết thúc ở vị trí {position} khi còn thiếu {expected}",
                       "syntax error: unexpected end at position {position} (expected {expected})"),
    "sta_expect_value": ("một giá trị, thuộc tính hoặc hàm", "a value, a property or a function"),
    "sta_expect_operator": ("một phép toán hoặc kết thúc", "an operator or the end"),
    "sta_expect_comma": ("',' hoặc ')'", "',' or ')'"),
    "sta_expect_property": ("tên thuộc tính", "a property name"),
    "sta_expect_order": ("',', asc, desc hoặc kết thúc", "',', asc, desc or the end"),
    "sta_expect_list": ("'(' và danh sách giá trị", "'(' and a list of values"),
    "sta_unterminated": ("chuỗi ký tự mở ở vị trí {position} chưa được đóng bằng dấu '",
                         "the string opened at position {position} is never closed with '"),
    "sta_character": ("ký tự {near} ở vị trí {position} không hợp lệ",
                      "unexpected character {near} at position {position}"),
    "sta_too_long": ("dài quá {n} ký tự", "longer than {n} characters"),
    "sta_nested": ("biểu thức lồng nhau quá sâu", "nested too deeply"),
    "sta_empty": ("trống", "empty"),
    "sta_time": ("{value} ở vị trí {position} không phải ngày, giờ hợp lệ",
                 "{value} at position {position} is not a valid date or time"),
    "sta_duration": ("{value} ở vị trí {position} không phải khoảng thời gian (ví dụ P1DT2H30M)",
                     "{value} at position {position} is not a duration (e.g. P1DT2H30M)"),
    "sta_number": ("số ở vị trí {position} không hữu hạn", "the number at position {position} is not finite"),
    "sta_wkt": ("{value} ở vị trí {position} không phải hình học WKT (ví dụ geography'POINT(106.07 21.18)')",
                "{value} at position {position} is not WKT geometry (e.g. geography'POINT(106.07 21.18)')"),
    "sta_expand_depth": ("$expand lồng quá {n} cấp", "$expand nested more than {n} levels deep"),
    "sta_expand_items": ("$expand có quá {n} mục", "more than {n} expanded items"),
    "sta_unknown_option": ("không có tùy chọn {name}; các tùy chọn: {options}",
                           "unknown query option {name}; the options are {options}"),
    "sta_boolean": ("{value} không phải true hoặc false", "{value} is not true or false"),
    "sta_result_format": ("{value}: chỉ trả về định dạng mặc định (dataArray chỉ dùng để gửi lên qua "
                          "POST CreateObservations)", "{value}: only the default format is served "
                          "(data arrays are taken by POST CreateObservations, not given out)"),
    "sta_whole": ("{value} không phải số nguyên không âm", "{value} is not a whole number ≥ 0"),
    "sta_too_big": ("không được lớn hơn {max}", "at most {max}"),
    "sta_not_condition": ("biểu thức ở vị trí {position} không phải điều kiện (nó là {kind})",
                          "the expression at position {position} is not a condition (it is a {kind})"),
    "sta_nav_value": ("{name} ở vị trí {position} là thuộc tính liên kết: hãy ghi một thuộc tính của "
                      "nó ({name}/…)", "{name} at position {position} is a navigation property: name "
                      "one of its properties ({name}/…)"),
    "sta_unknown_property": ("{entity} không có thuộc tính {name} (vị trí {position}); các thuộc "
                             "tính: {known}", "{entity} has no property {name} (position "
                             "{position}); it has {known}"),
    "sta_no_subproperty": ("{name} (vị trí {position}): {prop} không có thuộc tính con",
                           "{name} at position {position}: {prop} has no sub-properties"),
    "sta_unknown_nav": ("{entity} không có thuộc tính liên kết {name}; các liên kết: {known}",
                        "{entity} has no navigation property {name}; it has {known}"),
    "sta_types": ("không so sánh được {left} với {right} (vị trí {position})",
                  "cannot compare a {left} with a {right} (position {position})"),
    "sta_type": ("cần một số ở vị trí {position}, không phải {kind} (cần {expected})",
                 "a number is expected at position {position}, not a {kind} (expected {expected})"),
    "sta_argument": ("hàm {name}() ở vị trí {position} nhận {expected}, không phải {kind}",
                     "{name}() at position {position} takes a {expected}, not a {kind}"),
    "sta_function": ("không có hàm {name}() (vị trí {position}); các hàm: {known}",
                     "unknown function {name}() at position {position}; the functions are {known}"),
    "sta_arity": ("hàm {name}() ở vị trí {position} nhận {expected} tham số, không phải {n}",
                  "{name}() at position {position} takes {expected} arguments, not {n}"),
    "sta_order_type": ("không sắp xếp được theo {kind} (vị trí {position})",
                       "cannot sort by a {kind} (position {position})"),
    "sta_order_constant": ("khóa sắp xếp ở vị trí {position} không có thuộc tính nào",
                           "the sort key at position {position} names no property"),
    "sta_order_many": ("không sắp xếp được theo thuộc tính của nhiều đối tượng liên quan (vị trí "
                       "{position})", "cannot sort by a property of several related entities "
                       "(position {position})"),
    "sta_not_found": ("không có tài nguyên {path}", "{path}: no such resource"),
    "sta_id": ("{value} không phải mã (một số nguyên)", "{value} is not an id (a whole number)"),
    "sta_too_many": ("tối đa {n} quan trắc mỗi yêu cầu", "at most {n} observations per request"),
    "sta_foi": ("FeatureOfInterest cần name, encodingType application/geo+json và feature (một hình "
                "học GeoJSON hợp lệ)", "FeatureOfInterest needs name, encodingType "
                "application/geo+json and feature (a valid GeoJSON geometry)"),
    "sta_body": ("nội dung phải là {what} dạng JSON", "the body must be {what} as JSON"),
    "sta_method": ("{path} không nhận {method}: chỉ tạo được Observations (POST Observations, "
                   "Datastreams(id)/Observations, CreateObservations)",
                   "{path} does not take {method}: only Observations can be created (POST "
                   "Observations, Datastreams(id)/Observations, CreateObservations)"),
    "sta_datastream_required": ("cần Datastream: {{\"@iot.id\": <mã>}}",
                                "a Datastream is required: {{\"@iot.id\": <id>}}"),
    "sta_refused_unknown_datastream": ("không có luồng dữ liệu (Datastream) này mà bạn được ghi",
                                       "no datastream with this id that you may write to"),
    "sta_refused_bad_shape": ("không phải một đối tượng Observation", "not an Observation object"),
    "sta_refused_bad_datastream": ("mã Datastream phải là số nguyên dương nhỏ hơn 2^21",
                                   "the datastream id is not a positive integer below 2^21"),
    "sta_refused_missing_result": ("quan trắc thiếu result", "the observation has no result"),
    "sta_refused_result_not_finite": ("result là số không hữu hạn",
                                      "the result is a number that is not finite"),
    "sta_refused_bad_time": ("thời gian không theo ISO 8601 có múi giờ (ví dụ 2026-12-03T08:00:00+07:00)",
                             "a time is not ISO 8601 with a UTC offset"),
    "sta_refused_time_out_of_range": ("phenomenonTime quá xa trong quá khứ hoặc tương lai",
                                      "the phenomenon time is too far in the past or the future"),
    "sta_refused_bad_parameters": ("parameters phải là đối tượng JSON",
                                   "parameters is not a JSON object"),
    "sta_refused_bad_feature_of_interest": ("FeatureOfInterest không có hoặc không phải "
                                            "{{\"@iot.id\": <số nguyên>}}",
                                            "FeatureOfInterest unknown or not {{\"@iot.id\": <integer>}}"),
    "sta_refused_archived_period": ("tháng của phenomenonTime đã được lưu trữ (tách khỏi bảng)",
                                    "the month of the phenomenon time is detached (archived)"),
    # --- parameters shared by the API, the OGC API and exports (layers/query_params.py) ----
    "param_invalid": ("tham số không hợp lệ", "invalid parameter"),
    "bbox_numbers": ("cần 4 hoặc 6 số hữu hạn (minx,miny,maxx,maxy) cách nhau bằng dấu phẩy",
                     "expected 4 or 6 finite numbers (minx,miny,maxx,maxy)"),
    "bbox_order": ("góc dưới phải đứng trước góc trên",
                   "the lower corner must come before the upper one"),
    "bbox_range": ("tọa độ nằm ngoài giới hạn kinh độ, vĩ độ",
                   "coordinates out of range for longitude/latitude"),
    "bbox_outside": ("nằm ngoài vùng xác định của EPSG:{srid}",
                     "outside the area where EPSG:{srid} is defined"),
    "interval_open": ("khoảng thời gian cần ít nhất một đầu mút", "an interval needs at least one end"),
    "interval_order": ("khoảng thời gian kết thúc trước khi bắt đầu", "the interval ends before it starts"),
    "crs_unsupported": ("hệ tọa độ {value} không được hỗ trợ; dùng một trong: {supported}",
                        "unsupported crs {value}; supported: {supported}"),
    "crs_unsupported_any": ("hệ tọa độ không được hỗ trợ", "unsupported crs"),
    "no_time": ("lớp {layer} không có chiều thời gian", "layer {layer} has no time dimension"),
    "bbox_crs_alone": ("chỉ dùng cùng với bbox", "given without bbox"),
    "unknown_properties": ("không có thuộc tính {names}; các thuộc tính: {available}",
                           "unknown {names}; available: {available}"),
    "after_sortby": ("after phân trang theo mã đối tượng nên không dùng cùng sortby; dùng offset "
                     "để phân trang kết quả đã sắp xếp",
                     "pages by id, so it cannot be combined with sortby; use offset to page a "
                     "sorted result"),
    # --- exports (gis/io/export.py, gis/io/formats.py, api/routes/exports.py) ---------------
    "export_invalid": ("không xuất được dữ liệu theo yêu cầu (chi tiết kỹ thuật bằng tiếng Anh "
                       "với lang=en)", "the export cannot be made as asked"),
    "export_layer": ("chọn lớp dữ liệu cần xuất (xem /ogc/collections)",
                     "which layer to export (see /ogc/collections)"),
    "export_format": ("định dạng {value} không được hỗ trợ; dùng một trong: {choices}",
                      "unknown format {value}; use one of {choices}"),
    "export_crs": ("hệ tọa độ xuất {value} không được hỗ trợ; dùng {choices}",
                   "unsupported export crs {value}; use {choices}"),
    "export_fixed_crs": ("{format} luôn ở hệ EPSG:{srid} (WGS 84); chọn định dạng khác để xuất "
                         "theo VN-2000",
                         "{format} is always in EPSG:{srid} (WGS 84); choose another format for "
                         "VN-2000"),
    "export_encoding": ("bảng mã {value} không được hỗ trợ; dùng utf-8 hoặc tcvn3",
                        "encoding {value} is not supported; use utf-8 or tcvn3"),
    "export_no_field": ("không có trường {given}; các trường: {fields}",
                        "no field {given}; fields: {fields}"),
    "export_commune_date": ("{value} không phải ngày (YYYY-MM-DD) hoặc 'pre-2025'",
                            "{value} is not a date (YYYY-MM-DD) or 'pre-2025'"),
    "export_no_unit": ("không có đơn vị hành chính {value} vào ngày {day} (thêm "
                       "commune-date=pre-2025 cho các đơn vị trước năm 2025)",
                       "no administrative unit {value} on {day} (pass commune-date=pre-2025 for "
                       "the units before the 2025 reform)"),
    "export_unit_name": ("nhập mã đơn vị hành chính hoặc ít nhất hai chữ cái của tên",
                         "give an administrative unit code or at least two letters of its name"),
    # --- imports: the file (gis/io/imports: ImportFileError) ----------------------------------
    "import_file_invalid": ("không nhập được tệp (chi tiết kỹ thuật bằng tiếng Anh với lang=en)",
                            "the file cannot be imported"),
    "import_cannot_read": ("không đọc được tệp {file} (tệp hỏng hoặc không đúng định dạng)",
                           "cannot read {file}"),
    "import_companion": ("{file}: Shapefile thiếu tệp {ext}; thêm {name} cạnh {shp} (trong tệp zip)",
                         "{file}: the Shapefile has no {ext}; add {name} next to {shp} (in the zip)"),
    "import_no_geometry": ("tệp không có dữ liệu hình học", "the file has no geometry"),
    "import_csv_geometry": ("{file}: không có hình học (cần cột WKT tên WKT, geometry hoặc geom, "
                            "hoặc các cột kinh độ/vĩ độ)",
                            "{file}: no geometry (expected a WKT column named WKT, geometry or "
                            "geom, or longitude/latitude columns)"),
    "import_no_layer": ("{file} không có lớp {wanted}; các lớp: {layers}",
                        "{file} has no layer {wanted}; layers: {layers}"),
    "import_many_layers": ("{file} có {n} lớp không gian ({layers}); chọn một lớp bằng source_layer",
                           "{file} has {n} spatial layers ({layers}); choose one with source_layer"),
    "import_zip_damaged": ("{file}: tệp zip bị hỏng ({bad} sai tổng kiểm tra)",
                           "{file}: the zip is damaged ({bad} fails its checksum)"),
    "import_zip_unreadable": ("{file}: không đọc được tệp zip (bị hỏng hoặc không đầy đủ?)",
                              "{file}: not a readable zip file (damaged or truncated?)"),
    "import_zip_no_shp": ("{file}: tệp zip có {files} nhưng không có tệp .shp",
                          "{file}: the zip has {files} but no .shp file"),
    "import_zip_nothing": ("{file}: tệp zip không chứa Shapefile, GeoPackage, GeoJSON hay CSV",
                           "{file}: the zip holds no Shapefile, GeoPackage, GeoJSON or CSV"),
    "import_give_shp": ("{file}: hãy gửi tệp .shp (kèm .shx, .dbf và .prj bên cạnh) hoặc một tệp "
                        "zip chứa chúng",
                        "{file}: give the .shp (with its .shx, .dbf and .prj beside it) or a zip "
                        "of them"),
    "import_file_type": ("{file}: không hỗ trợ loại tệp {suffix}; dùng Shapefile (zip), GeoPackage, "
                         "GeoJSON, FlatGeobuf hoặc CSV",
                         "{file}: unsupported file type {suffix}; use a Shapefile (zip), "
                         "GeoPackage, GeoJSON, FlatGeobuf or CSV"),
    "import_encoding_name": ("bảng mã nguồn {value} không thuộc: {choices}",
                             "from-encoding {value} is not one of {choices}"),
    "import_encoding_unsure": ("{file}: văn bản có vẻ dùng bảng mã cũ {encoding} nhưng quá ít để "
                               "chắc chắn; nhập lại với bảng mã nguồn {encoding} để chuyển đổi "
                               "(hoặc utf-8 để giữ nguyên)",
                               "{file}: the text looks like legacy {encoding}, but there is too "
                               "little of it to be sure; re-run with from-encoding {encoding} (or "
                               "utf-8 to keep it as it is)"),
    "import_not_utf8": ("{file}: cột {column} không phải UTF-8 hợp lệ; nhập lại với bảng mã nguồn "
                        "tcvn3 (hoặc vni, cp1258)",
                        "{file}: column {column} is not valid UTF-8; re-run with from-encoding "
                        "tcvn3 (or vni, cp1258)"),
    "import_crs": ("{file}: không xác định được hệ tọa độ của tệp; nhập lại và ghi rõ hệ tọa độ "
                   "(crs, ví dụ EPSG:9209 cho VN-2000 của tỉnh)",
                   "{file}: the file's CRS is missing, unknown or suspicious; re-run with crs "
                   "(e.g. EPSG:9209, the province's VN-2000)"),
    "import_same_field": ("cột {a} và cột {b} cùng ứng với trường {field}",
                          "columns {a} and {b} both hold field {field}"),
    "import_refused": ("cơ sở dữ liệu từ chối dữ liệu nhập (chi tiết kỹ thuật bằng tiếng Anh "
                       "với lang=en)", "the database refused the import"),
    "import_other_columns": ("{file} có các cột khác với {first}", "{file} has other columns than {first}"),
    "import_lacks_required": ("{file} thiếu trường bắt buộc: {fields}",
                              "{file} lacks required field(s) {fields}"),
    "import_lacks_key": ("{file} thiếu trường khóa {fields} để đối chiếu với lớp {layer}",
                         "{file} lacks key field(s) {fields} that match rows of {layer}"),
    "import_read_only": ("lớp {layer} chỉ để đọc; dữ liệu của lớp có chức năng nhập riêng",
                         "{layer} is read-only here; its data has an import of its own"),
    # --- indicator imports (gis/indicators/imports.py) ----------------------------------------
    "indicators_import_role": ("nhập số liệu chỉ tiêu cần vai trò cán bộ điều hành hoặc quản trị",
                               "importing indicator values requires role operator or admin"),
    "indicators_file_type": ("{file}: không hỗ trợ loại tệp {suffix}; dùng CSV hoặc XLSX",
                             "{file}: unsupported file type {suffix}; use CSV or XLSX"),
    "indicators_not_utf8": ("{file}: tệp không ở bảng mã UTF-8; lưu lại dạng CSV UTF-8",
                            "{file}: the file is not UTF-8; save it as CSV UTF-8"),
    "indicators_too_many": ("{file}: nhiều hơn {n} dòng", "{file}: more than {n} rows"),
    "indicators_no_sheet": ("{file}: không có trang tính cần nhập; các trang: {sheets}",
                            "{file}: no such sheet; sheets: {sheets}"),
    "indicators_empty": ("{file}: tệp rỗng", "{file}: the file is empty"),
    "indicators_no_values": ("{file}: không có giá trị nào để nhập", "{file}: no value to import"),
    "indicators_no_header": ("{file}: không tìm thấy dòng tiêu đề; cần các cột mã hoặc tên đơn vị, "
                             "mã chỉ tiêu, kỳ và giá trị (dạng dọc), hoặc cột đơn vị và mỗi kỳ một "
                             "cột (dạng niên giám)",
                             "{file}: no header row found; expected unit code or name, indicator, "
                             "period and value columns (long), or a unit column and one column per "
                             "period (wide)"),
    "indicators_unknown": ("không có chỉ tiêu {value}", "indicator {value} does not exist"),
    "indicators_wide_which": ("{file}: bảng không ghi tên chỉ tiêu; hãy chọn chỉ tiêu",
                              "{file}: the table names no indicator; give one (indicator)"),
    "indicators_wide_several": ("{file}: tiêu đề nêu nhiều chỉ tiêu ({codes}); hãy chọn một",
                                "{file}: the title names several indicators ({codes}); give one"),
    "indicators_w_removed": ("đã xóa {n} giá trị cùng chỉ tiêu, kỳ và cấp đơn vị không còn trong tệp",
                             "{n} value(s) of the same indicators, periods and levels that the "
                             "file no longer holds were removed"),
    "indicators_r_indicator": ("{column}: {value} không phải mã chỉ tiêu",
                               "{column}: {value} is not an indicator"),
    "indicators_r_period": ("{column}: {value} không phải kỳ số liệu (2023, 2023-Q2, 2023-06)",
                            "{column}: {value} is not a period (2023, 2023-Q2, 2023-06)"),
    "indicators_r_periodicity": ("{column}: {value} không phải kỳ {periodicity} của chỉ tiêu {code}",
                                 "{column}: {value} is not a {periodicity} period of {code}"),
    "indicators_r_number": ("{column}: {value} không phải là số", "{column}: {value} is not a number"),
    "indicators_r_range": ("{column}: {value} nằm ngoài khoảng {range} ({unit}) của chỉ tiêu {code}",
                           "{column}: {value} is outside {range} ({unit}) for {code}"),
    "indicators_r_no_unit": ("{column}: thiếu mã hoặc tên đơn vị", "{column}: no unit code or name"),
    "indicators_r_unit_era": ("{column}: đơn vị {value} không có hiệu lực vào ngày {day} (kỳ {period})",
                              "{column}: unit {value} was not valid on {day} (period {period})"),
    "indicators_r_unit_code": ("{column}: {value} không phải mã đơn vị hành chính",
                               "{column}: {value} is not an administrative unit code"),
    "indicators_r_unit_mismatch": ("{column}: tên {value} không khớp với đơn vị {code} ({name})",
                                   "{column}: name {value} does not match unit {code} ({name})"),
    "indicators_r_unit_name": ("{column}: không có đơn vị hành chính tên {value} vào ngày {day} "
                               "(kỳ {period})",
                               "{column}: no administrative unit named {value} on {day} (period "
                               "{period})"),
    "indicators_r_unit_ambiguous": ("{column}: tên {value} ứng với nhiều đơn vị: {codes}; hãy ghi mã "
                                    "đơn vị", "{column}: {value} is ambiguous: {codes}; give the "
                                    "unit code"),
    "indicators_r_repeat": ("{column}: {code} kỳ {period} của đơn vị {unit} trùng với dòng {row}",
                            "{column}: {code} {period} of unit {unit} repeats row {row}"),
    "indicators_period": ("{value} không phải kỳ số liệu (2023, 2023-Q2, 2023-06)",
                          "{value} is not a period (2023, 2023-Q2, 2023-06)"),
    "indicators_periodicity": ("{value} không phải kỳ {periodicity} của chỉ tiêu {code}",
                               "{value} is not a {periodicity} period of {code}"),
    "indicators_no_indicator": ("không có chỉ tiêu {value}", "no indicator {value}"),
    "indicators_no_unit": ("không có đơn vị hành chính {value} vào ngày {day}",
                           "no administrative unit {value} on {day}"),
    # --- imports: a refused row (gis/io/imports: report.Reason) ------------------------------
    "import_not_text": ("{column}: {value} không phải chuỗi ký tự", "{column}: {value} is not text"),
    "import_not_codes": ("{column}: {value} không phải danh sách mã",
                         "{column}: {value} is not a list of codes"),
    "import_not_integer": ("{column}: {value} không phải số nguyên",
                           "{column}: {value} is not an integer"),
    "import_not_number": ("{column}: {value} không phải là số", "{column}: {value} is not a number"),
    "import_not_finite": ("{column}: {value} không phải số hữu hạn",
                          "{column}: {value} is not a finite number"),
    "import_not_date": ("{column}: {value} không phải ngày (YYYY-MM-DD hoặc DD/MM/YYYY)",
                        "{column}: {value} is not a date (YYYY-MM-DD or DD/MM/YYYY)"),
    "import_not_datetime": ("{column}: {value} không phải ngày giờ (ISO 8601)",
                            "{column}: {value} is not a date-time (ISO 8601)"),
    "import_not_boolean": ("{column}: {value} không phải true/false",
                           "{column}: {value} is not true/false"),
    "import_not_one_of": ("{column}: {value} không thuộc các giá trị: {allowed}",
                          "{column}: {value} is not one of {allowed}"),
    "import_row_rule": ("{field} {value} chỉ được ghi bởi: {roles}",
                        "{field} {value} may only be written by {roles}"),
    "import_empty": ("{column} để trống", "{column} is empty"),
    "import_duplicate": ("trùng {keys} {shown} với dòng {row}", "same {keys} {shown} as row {row}"),
    "import_version_date": ("{column} để trống: các dòng của cùng một đối tượng là các phiên bản "
                            "của nó và mỗi dòng cần ngày có hiệu lực",
                            "{column} is empty: rows of the same feature are its versions and each "
                            "needs the date it took effect"),
    "import_version_repeat": ("trùng đối tượng {shown} và ngày hiệu lực {when} với dòng {row}",
                              "same feature {shown} and date {when} as row {row}"),
    "import_outside_vietnam": ("nằm ngoài lãnh thổ Việt Nam sau khi chuyển từ {crs}: sai hệ tọa độ?",
                               "outside Vietnam after reprojection from {crs}: wrong CRS?"),
    "import_empty_geometry": ("hình học rỗng", "empty geometry"),
    "import_no_row_geometry": ("không có hình học", "no geometry"),
    "import_unreadable_geometry": ("không đọc được hình học", "unreadable geometry"),
    "import_geometry_type": ("hình {what} trong khi lớp {layer} chứa {type}",
                             "{what} where layer {layer} holds {type}s"),
    "import_invalid_geometry": ("hình học không hợp lệ ({reason}); nhập lại với tùy chọn sửa hình "
                                "(repair) để sửa bằng ST_MakeValid",
                                "invalid geometry ({reason}); re-run with repair to fix it with "
                                "ST_MakeValid"),
    "import_row_refused": ("cơ sở dữ liệu từ chối dòng này (chi tiết kỹ thuật bằng tiếng Anh với "
                           "lang=en)", "the database refused the row"),
    "photo_too_many": ("tối đa {max} ảnh", "at most {max} photos"),
    "photo_not_found": ("không tìm thấy ảnh {id}", "photo {id} not found"),
    "report_flood": ("bạn đã gửi quá nhiều phản ánh trong thời gian ngắn; hãy thử lại sau {seconds}"
                     " giây", "too many reports from this address; try again in {seconds} seconds"),
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
    message (the reasons of `either`) in LANG, a value worded elsewhere ({"vi": .., "en": ..},
    e.g. role titles) in LANG."""
    if isinstance(value, Message):
        return text(value, lang) or value.key
    if isinstance(value, Mapping) and "vi" in value:  # worded elsewhere, in both languages
        return str(value.get(lang, value["vi"]))
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
    return text(exc.message or exc.fallback, lang) or exc.detail


def title(exc: GeoIOCError, status: int, lang: str) -> str:
    """The short title of EXC's kind (problem+json `title`): in English the class's own (what
    clients have read so far), else the catalogue's title of the status."""
    if lang == "en":
        return exc.title
    return text(Message(f"status_{status}"), lang) or text(Message("status_other"), lang) or exc.title


def job_message(job: ExportJob, lang: str) -> str:
    """An export job's message (gis.io.jobs) in LANG: in English as stored."""
    if lang == "en":
        return job.message
    return text(message_entry(job), lang) or job.message


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
