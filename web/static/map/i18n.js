/* GeoIOC command map: user-interface strings in Vietnamese (default) and English.
 * Layer titles, field labels and coded values come from the layer manifest (the catalogue);
 * only the map's own words live here. */
(function (G) {
  "use strict";

  const STRINGS = {
    vi: {
      app_title: "Bản đồ điều hành",
      app_subtitle: "Nền tảng GIS mở cho Trung tâm điều hành thông minh",
      search_placeholder: "Tìm xã/phường (cả tên cũ), địa điểm, đường, cơ sở, trạm, tờ/thửa (12/345), tọa độ",
      sign_in: "Đăng nhập",
      sign_out: "Đăng xuất",
      report_problem: "Gửi phản ánh",
      report_short: "Phản ánh",
      report_problem_title: "Phản ánh sự cố, vi phạm tại hiện trường cho cơ quan chức năng",
      sign_in_title: "Đăng nhập hệ thống",
      username: "Tên đăng nhập",
      password: "Mật khẩu",
      cancel: "Hủy",
      sign_in_failed: "Sai tên đăng nhập hoặc mật khẩu.",
      sign_in_locked: "Tạm khóa do nhập sai nhiều lần. Thử lại sau {s} giây.",
      session_ended: "Phiên làm việc đã kết thúc, vui lòng đăng nhập lại.",
      layers: "Lớp dữ liệu",
      count_in_view: "Số đối tượng trong khung nhìn (theo cơ sở dữ liệu)",
      panel_toggle: "☰ Lớp",
      legend: "Chú giải",
      from_zoom: "từ mức thu phóng {z}",
      zoom_in_to_see: "Phóng to tới mức {z} để hiển thị",
      era_current: "Hiện hành",
      era_previous: "Trước 2025",
      filters: "Bộ lọc sự cố",
      window: "Khoảng thời gian",
      last_days: "{n} ngày qua",
      last_year: "1 năm qua",
      custom: "Tùy chọn",
      from: "Từ",
      to: "Đến",
      categories: "Lĩnh vực",
      severity: "Mức độ",
      status: "Trạng thái",
      all: "Tất cả",
      none: "Bỏ chọn",
      incidents_in_window: "sự cố trong kỳ",
      vs_previous: "so với kỳ trước ({n})",
      no_previous: "kỳ trước không có sự cố",
      loading: "Đang tải…",
      no_results: "Không tìm thấy kết quả",
      more_results: "Xem thêm {n}",
      parcel: "Thửa đất",
      parcel_page: "Mở trang thửa đất",
      sheet_parcel: "Tờ {s} · Thửa {p}",
      zone: "Khu quy hoạch",
      commune: "Đơn vị hành chính",
      incidents_here: "Sự cố trong kỳ",
      previous_window: "Kỳ trước",
      trend: "Diễn biến (kỳ này so với kỳ trước)",
      this_window: "Kỳ này",
      sign_in_for_incidents: "Đăng nhập để xem thống kê sự cố.",
      incident: "Sự cố",
      cameras_covering: "Camera có vùng quan sát bao phủ",
      no_cameras: "Không có camera nào quan sát được vị trí này.",
      distance: "{d} m",
      camera: "Camera",
      sensor: "Trạm quan trắc",
      latest_value: "Giá trị mới nhất",
      of_threshold: "{p}% ngưỡng",
      stale: "số liệu cũ",
      place: "Địa điểm du lịch",
      location: "Vị trí",
      coordinates: "Tọa độ",
      clusters_note: "Đang hiển thị {n} cụm (tổng hợp trên máy chủ) – phóng to để xem từng sự cố",
      points_note: "{n} sự cố trên bản đồ",
      heatmap_note: "Bản đồ nhiệt: {n} sự cố, ô lưới {m} m",
      error: "Không tải được dữ liệu: {e}",
      network_error: "mất kết nối tới máy chủ",
      window_date_needed: "nhập đủ ngày và giờ",
      window_order: "phải sau thời điểm bắt đầu",
      http_error: "máy chủ trả lời lỗi {s}",
      page_error: "lỗi trong trang (chi tiết trong bảng điều khiển của trình duyệt)",
      lat_lon: "{lat}; {lon}",
      basemap_off: "Không có bản đồ nền (chế độ ngoại tuyến)",
      yes: "Có",
      no: "Không",
      permanent: "Lâu dài",
      search: "Tìm kiếm",
      close: "Đóng",
      zoom_in: "Phóng to",
      zoom_out: "Thu nhỏ",
      other_language: "English",
      console_toggle: "Bàn điều hành",
      console_title: "Phản ánh đang mở – theo hạn xử lý",
      console_search: "Tìm mã số hoặc nội dung phản ánh",
      console_status: "Trạng thái",
      console_service: "Lĩnh vực",
      console_agency: "Đơn vị xử lý",
      console_commune: "Xã/phường",
      console_any_status: "Mọi trạng thái",
      console_any_service: "Mọi lĩnh vực",
      console_any_agency: "Mọi đơn vị",
      console_any_commune: "Mọi xã/phường",
      console_overdue_only: "Chỉ phản ánh quá hạn",
      console_count: "{n} phản ánh đang mở · {o} quá hạn trong danh sách",
      console_new_report: "Có phản ánh mới #{id}",
      console_selected: "Đã chọn {n}",
      console_select: "Chọn phản ánh #{id}",
      console_note: "Ghi chú (lý do, gửi kèm thông báo cho người dân)",
      console_choose_status: "Chuyển sang trạng thái…",
      console_choose_agency: "Chọn đơn vị…",
      console_apply: "Chuyển các mục đã chọn",
      console_assign: "Giao xử lý",
      console_empty: "Không có phản ánh nào khớp bộ lọc.",
      console_overdue: "Quá hạn",
      console_due: "Hạn xử lý",
      console_no_deadline: "chưa có hạn",
      console_overdue_by: "quá hạn {d}",
      console_left: "còn {d}",
      console_days: "{n} ngày",
      console_hours: "{n} giờ",
      console_minutes: "{n} phút",
      console_duplicate_of: "trùng với #{id}",
      console_duplicate: "Trùng với",
      console_report: "Phản ánh của người dân",
      console_reported: "Thời điểm tiếp nhận",
      console_actions: "Xử lý",
      console_no_moves: "Không còn bước chuyển nào.",
      console_timeline: "Diễn biến xử lý",
      console_no_history: "Chưa có diễn biến.",
      console_tl_created: "Tiếp nhận phản ánh",
      console_tl_move: "{a} → {b}",
      console_tl_assign: "Giao cho {a}",
      console_tl_duplicate: "Đánh dấu trùng lặp",
      console_tl_unlink: "Bỏ đánh dấu trùng lặp",
      console_actor_system: "Hệ thống",
      console_actor_citizen: "Người dân",
      console_unlink: "Không trùng lặp: bỏ liên kết",
      console_unlink_hint: "Phản ánh sẽ được xử lý riêng, không theo phản ánh #{id}; ghi chú ở trên được lưu kèm.",
    },
    en: {
      app_title: "Command map",
      app_subtitle: "open GIS platform for an Intelligent Operations Center",
      search_placeholder: "Find a commune (old names too), place, road, facility, station, sheet/parcel (12/345), coordinates",
      sign_in: "Sign in",
      sign_out: "Sign out",
      report_problem: "Report a problem",
      report_short: "Report",
      report_problem_title: "Report a problem or a violation on the ground to the authorities",
      sign_in_title: "Sign in",
      username: "User name",
      password: "Password",
      cancel: "Cancel",
      sign_in_failed: "Wrong user name or password.",
      sign_in_locked: "Locked after too many failures. Try again in {s} s.",
      session_ended: "Your session has ended, please sign in again.",
      layers: "Layers",
      count_in_view: "Features in view (counted in the database)",
      panel_toggle: "☰ Layers",
      legend: "Legend",
      from_zoom: "from zoom {z}",
      zoom_in_to_see: "Zoom in to level {z} to see it",
      era_current: "Current",
      era_previous: "Before 2025",
      filters: "Incident filters",
      window: "Time window",
      last_days: "Last {n} days",
      last_year: "Last year",
      custom: "Custom",
      from: "From",
      to: "To",
      categories: "Categories",
      severity: "Severity",
      status: "Status",
      all: "All",
      none: "None",
      incidents_in_window: "incidents in window",
      vs_previous: "vs previous window ({n})",
      no_previous: "none in the previous window",
      loading: "Loading…",
      no_results: "Nothing found",
      more_results: "{n} more",
      parcel: "Parcel",
      parcel_page: "Open the parcel page",
      sheet_parcel: "Sheet {s} · Parcel {p}",
      zone: "Planning zone",
      commune: "Administrative unit",
      incidents_here: "Incidents in window",
      previous_window: "Previous window",
      trend: "Trend (this window vs previous)",
      this_window: "This window",
      sign_in_for_incidents: "Sign in to see incident statistics.",
      incident: "Incident",
      cameras_covering: "Cameras whose field of view covers it",
      no_cameras: "No camera sees this place.",
      distance: "{d} m",
      camera: "Camera",
      sensor: "Monitoring station",
      latest_value: "Latest value",
      of_threshold: "{p}% of threshold",
      stale: "stale",
      place: "Tourism place",
      location: "Location",
      coordinates: "Coordinates",
      clusters_note: "Showing {n} clusters (aggregated on the server) – zoom in for single incidents",
      points_note: "{n} incidents on the map",
      heatmap_note: "Heatmap: {n} incidents, {m} m cells",
      error: "Could not load data: {e}",
      network_error: "no connection to the server",
      window_date_needed: "give a date and a time",
      window_order: "must be after the start",
      http_error: "the server answered with error {s}",
      page_error: "an error in the page (details in the browser console)",
      lat_lon: "{lat}, {lon}",
      basemap_off: "No basemap (offline mode)",
      yes: "Yes",
      no: "No",
      permanent: "Permanent",
      search: "Search",
      close: "Close",
      zoom_in: "Zoom in",
      zoom_out: "Zoom out",
      other_language: "Tiếng Việt",
      console_toggle: "Console",
      console_title: "Open reports – by deadline",
      console_search: "Find a report number or words",
      console_status: "Status",
      console_service: "Category",
      console_agency: "Agency",
      console_commune: "Commune",
      console_any_status: "Any status",
      console_any_service: "Any category",
      console_any_agency: "Any agency",
      console_any_commune: "Any commune",
      console_overdue_only: "Overdue only",
      console_count: "{n} open reports · {o} overdue in the list",
      console_new_report: "New report #{id}",
      console_selected: "{n} selected",
      console_select: "Select report #{id}",
      console_note: "Note (why; sent to the citizen)",
      console_choose_status: "Move to status…",
      console_choose_agency: "Choose an agency…",
      console_apply: "Move the selected",
      console_assign: "Assign",
      console_empty: "No report matches the filters.",
      console_overdue: "Overdue",
      console_due: "Deadline",
      console_no_deadline: "no deadline",
      console_overdue_by: "overdue by {d}",
      console_left: "{d} left",
      console_days: "{n} d",
      console_hours: "{n} h",
      console_minutes: "{n} min",
      console_duplicate_of: "duplicate of #{id}",
      console_duplicate: "Duplicate of",
      console_report: "Citizen report",
      console_reported: "Received at",
      console_actions: "Actions",
      console_no_moves: "No further moves.",
      console_timeline: "Timeline",
      console_no_history: "No history yet.",
      console_tl_created: "Report received",
      console_tl_move: "{a} → {b}",
      console_tl_assign: "Assigned to {a}",
      console_tl_duplicate: "Marked as a duplicate",
      console_tl_unlink: "Not a duplicate",
      console_actor_system: "System",
      console_actor_citizen: "Citizen",
      console_unlink: "Not a duplicate: unlink",
      console_unlink_hint: "The report will be handled on its own, not with report #{id}; the note above is stored with it.",
    },
  };

  G.lang = "vi";

  /** The string KEY in the current language, with {name} placeholders filled from VARS. */
  G.t = function (key, vars) {
    const table = STRINGS[G.lang] || STRINGS.vi;
    let text = key in table ? table[key] : (STRINGS.vi[key] || key);
    if (vars) {
      for (const name of Object.keys(vars)) text = text.split("{" + name + "}").join(vars[name]);
    }
    return text;
  };

  /** A {vi, en} pair from the manifest, in the current language. */
  G.pick = function (pair) {
    if (pair == null) return "";
    if (typeof pair === "string") return pair;
    return pair[G.lang] || pair.vi || pair.en || "";
  };

  // Numbers, dates and times: web/static/common/format.js, in the current language.
  G.fmtNumber = function (n, digits) {
    return G.fmt.number(n, G.lang, digits);
  };

  G.fmtDate = function (iso) {
    return G.fmt.date(iso);
  };

  G.fmtDateTime = function (iso) {
    return G.fmt.dateTime(iso);
  };

  /** The clock in the top bar: weekday and date-time, Vietnam time. */
  G.fmtClock = function (d) {
    const day = d.toLocaleDateString(G.lang === "en" ? "en-GB" : "vi-VN", { timeZone: G.fmt.TZ, weekday: "short" });
    return `${day}, ${G.fmt.dateTime(d)}`;
  };

  /** Put the current language into every element marked data-i18n, data-i18n-placeholder,
   * data-i18n-title or data-i18n-aria-label, and into the document's title. */
  G.translatePage = function (root) {
    const scope = root || document;
    scope.querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = G.t(el.dataset.i18n);
    });
    scope.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.placeholder = G.t(el.dataset.i18nPlaceholder);
    });
    scope.querySelectorAll("[data-i18n-title]").forEach((el) => {
      el.title = G.t(el.dataset.i18nTitle);
    });
    scope.querySelectorAll("[data-i18n-aria-label]").forEach((el) => {
      el.setAttribute("aria-label", G.t(el.dataset.i18nAriaLabel));
    });
    document.title = `${G.t("app_title")} · GeoIOC – ${G.t("app_subtitle")}`;
    document.documentElement.lang = G.lang;
  };
})(window.GeoIOC = window.GeoIOC || {});
