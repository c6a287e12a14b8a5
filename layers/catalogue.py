"""The layer catalogue: one definition per spatial table.

Adding a layer means adding one `Layer(...)` here (and its table in a migration); OGC
collections, map layers, export schemas and access rules follow from it.
"""

from __future__ import annotations

from layers.model import (
    Access,
    Aggregates,
    Field,
    Layer,
    Overview,
    RowRule,
    Style,
    TileFilter,
    Versions,
)

F = Field

# The sample province's extent (lon/lat): the fallback extent of an empty layer.
PROVINCE_BBOX = [105.90, 20.95, 106.35, 21.30]

STATUS_VALUES = {
    "online": ("Đang hoạt động", "Online"),
    "offline": ("Mất kết nối", "Offline"),
    "maintenance": ("Bảo trì", "Maintenance"),
}

# A camera's status: the register's (maintenance) and its health from heartbeats
# (gis/sensors/cameras.py: online, degraded, offline).
CAMERA_STATUS_VALUES = {
    "online": STATUS_VALUES["online"],
    "degraded": ("Suy giảm", "Degraded"),
    "offline": STATUS_VALUES["offline"],
    "maintenance": STATUS_VALUES["maintenance"],
}

INCIDENT_CATEGORIES = {
    "traffic_accident": ("Tai nạn giao thông", "Traffic accident"),
    "public_order": ("Trật tự công cộng", "Public order"),
    "fire": ("Cháy nổ", "Fire"),
    "environment": ("Môi trường", "Environment"),
    "land_violation": ("Vi phạm đất đai", "Land violation"),
    "infrastructure": ("Hạ tầng", "Infrastructure"),
    "security_event": ("An ninh", "Security event"),
}
INCIDENT_COLORS = {
    "traffic_accident": "#e6550d",
    "public_order": "#756bb1",
    "fire": "#de2d26",
    "environment": "#31a354",
    "land_violation": "#8c6d31",
    "infrastructure": "#3182bd",
    "security_event": "#252525",
}
SEVERITIES = {
    "1": ("Thấp", "Low"),
    "2": ("Trung bình", "Medium"),
    "3": ("Cao", "High"),
    "4": ("Nghiêm trọng", "Critical"),
}
INCIDENT_STATUSES = {
    "received": ("Mới tiếp nhận", "Received"),
    "verified": ("Đã xác minh", "Verified"),
    "assigned": ("Đã phân công", "Assigned"),
    "in_progress": ("Đang xử lý", "In progress"),
    "resolved": ("Đã xử lý", "Resolved"),
    "rejected": ("Từ chối", "Rejected"),
    "closed": ("Đã đóng", "Closed"),
}
INCIDENT_SOURCES = {
    "hotline": ("Đường dây nóng", "Hotline"),
    "citizen_app": ("Ứng dụng công dân", "Citizen app"),
    "camera": ("Camera", "Camera"),
    "sensor": ("Cảm biến", "Sensor"),
    "patrol": ("Tuần tra", "Patrol"),
    "social_media": ("Mạng xã hội", "Social media"),
}
# Congestion classes of a road segment: speed against free-flow speed (the ratio's bounds are
# data, table traffic_congestion_classes of migration 0024; the labels say them). 'unknown': a
# monitored segment whose live speeds stopped (gis/sensors/traffic.py).
TRAFFIC_STATES = {
    "free": ("Thông thoáng (≥ 75% tốc độ tự do)", "Free flow (≥ 75% of free-flow speed)"),
    "moderate": ("Đông (50–75%)", "Moderate (50–75%)"),
    "heavy": ("Ùn ứ (25–50%)", "Heavy (25–50%)"),
    "jammed": ("Tắc nghẽn (< 25%)", "Jammed (< 25%)"),
    "unknown": ("Chưa có dữ liệu mới", "No recent data"),
}
ROAD_CLASSES = {
    "expressway": ("Đường cao tốc", "Expressway"),
    "trunk": ("Quốc lộ", "National road"),
    "primary": ("Tỉnh lộ", "Provincial road"),
    "secondary": ("Đường huyện", "District road"),
    "local": ("Đường xã, ngõ xóm", "Local street"),
}
ADMIN_LEVELS = {
    "province": ("Tỉnh", "Province"),
    "district": ("Huyện", "District"),
    "commune": ("Xã, phường", "Commune"),
}
TOURISM_CATEGORIES = {
    "pagoda": ("Chùa", "Pagoda"),
    "temple": ("Đền, đình", "Temple"),
    "festival": ("Lễ hội", "Festival site"),
    "craft_village": ("Làng nghề", "Craft village"),
    "museum": ("Bảo tàng", "Museum"),
    "park": ("Công viên", "Park"),
    "hotel": ("Khách sạn", "Hotel"),
    "restaurant": ("Nhà hàng", "Restaurant"),
}
PARCEL_ORIGINS = {
    "allocation": ("Nhà nước giao đất", "State allocation"),
    "lease": ("Nhà nước cho thuê đất", "State lease"),
    "recognition": ("Công nhận quyền sử dụng đất", "Recognition"),
    "transfer": ("Nhận chuyển nhượng", "Transfer"),
}
SENSOR_KINDS = {"air": ("Không khí", "Air"), "water": ("Nước", "Water")}
FACILITY_TYPES = {
    "people_committee": ("Ủy ban nhân dân xã, phường", "Commune People's Committee"),
    "school": ("Trường học", "School"),
    "clinic": ("Trạm y tế", "Health station"),
    "hospital": ("Bệnh viện", "Hospital"),
    "police": ("Công an", "Police station"),
    "fire_station": ("Phòng cháy chữa cháy", "Fire station"),
}
FACILITY_COLORS = {
    "people_committee": "#b2182b",
    "school": "#2166ac",
    "clinic": "#1b7837",
    "hospital": "#e7298a",
    "police": "#35478c",
    "fire_station": "#f46d43",
}

# Groups of the map's layer panel (Layer.domain), in the order the panel shows them.
DOMAINS: dict[str, tuple[str, str]] = {
    "admin": ("Hành chính", "Administrative units"),
    "land": ("Đất đai – Quy hoạch", "Land and planning"),
    "services": ("Cơ sở công cộng", "Public facilities"),
    "traffic": ("Giao thông", "Traffic"),
    "tourism": ("Du lịch", "Tourism"),
    "environment": ("Môi trường", "Environment"),
    "safety": ("An ninh – Trật tự", "Public safety"),
}

INDICATOR_DOMAINS = {
    "population": ("Dân số", "Population"),
    "land": ("Đất đai", "Land"),
    "labour": ("Lao động, việc làm", "Labour"),
    "economy": ("Kinh tế", "Economy"),
    "finance": ("Tài chính, ngân sách", "Public finance"),
    "enterprise": ("Doanh nghiệp, đầu tư", "Enterprises and investment"),
    "social": ("An sinh xã hội", "Social welfare"),
    "health": ("Y tế", "Health"),
    "education": ("Giáo dục", "Education"),
    "environment": ("Môi trường", "Environment"),
    "infrastructure": ("Hạ tầng", "Infrastructure"),
    "agriculture": ("Nông nghiệp", "Agriculture"),
    "safety": ("An ninh, trật tự", "Public safety"),
}

LAYERS: tuple[Layer, ...] = (
    Layer(
        id="admin_units",
        title_vi="Đơn vị hành chính",
        title_en="Administrative units",
        description_vi="Ranh giới tỉnh, huyện, xã trước và sau sắp xếp năm 2025 (dữ liệu mẫu).",
        description_en="Province, district and commune boundaries before and after the 2025 "
        "reform (synthetic sample).",
        domain="admin",
        table="admin_units",
        geometry_type="MultiPolygon",
        time_column="valid_from",
        time_end_column="valid_to",
        fields=(
            F("code", "str", "Mã đơn vị", "Code", "MADVHC"),
            F("name", "str", "Tên đơn vị", "Name", "TEN"),
            F("level", "str", "Cấp", "Level", "CAP", values=ADMIN_LEVELS),
            F("parent_code", "str", "Mã đơn vị cấp trên", "Parent code", "MACHA",
              refers_to="gazetteer"),
            F("population", "int", "Dân số", "Population", "DANSO"),
            F("valid_from", "date", "Hiệu lực từ", "Valid from", "TUNGAY"),
            F("valid_to", "date", "Hiệu lực đến", "Valid to", "DENNGAY"),
        ),
        style=Style(color="#334155", fill_color="#ffffff", weight=1.1, fill_opacity=0.02,
                    width_by="level", widths={"province": 3, "district": 2, "commune": 1.1},
                    dashes={"district": "6 4"}, min_zooms={"commune": 9}),
        keywords=("ranh giới", "hành chính", "boundaries"),
        natural_key=("code", "valid_from"),
        search_fields=("name",),
        identify=True,
        identify_filter=("level", "commune"),
        label_priority=100,
    ),
    Layer(
        id="land_use_zones",
        title_vi="Quy hoạch sử dụng đất",
        title_en="Land-use planning zones",
        description_vi="Các khu quy hoạch sử dụng đất theo mã loại đất.",
        description_en="Land-use planning zones by land-use code.",
        domain="land",
        table="land_use_zones",
        geometry_type="MultiPolygon",
        fields=(
            F("land_use_code", "str", "Mã loại đất quy hoạch", "Planned land-use code", "LOAIDAT",
              refers_to="land_use"),
            F("plan_name", "str", "Tên quy hoạch", "Plan", "QUYHOACH"),
            F("approved_on", "date", "Ngày phê duyệt", "Approved on", "NGAYPD"),
            F("commune_code", "str", "Mã xã", "Commune code", "MAXA", refers_to="gazetteer"),
        ),
        style=Style(color="#999999", weight=0.5, fill_opacity=0.6, by="land_use_code"),
        min_zoom=8,
        overview=Overview(below_zoom=14, group_by=("land_use_code", "commune_code"),
                          tolerance_m=30),
        keywords=("quy hoạch", "sử dụng đất", "land use"),
        import_roles=("land_officer",),
        identify=True,
    ),
    Layer(
        id="parcels",
        title_vi="Thửa đất địa chính",
        title_en="Cadastral parcels",
        description_vi="Thửa đất theo bản đồ địa chính: số tờ, số thửa, loại đất, diện tích.",
        description_en="Cadastral parcels: sheet and parcel numbers, land use, area.",
        domain="land",
        table="parcels",
        geometry_type="MultiPolygon",
        time_column="updated_at",
        fields=(
            F("commune_code", "str", "Mã xã", "Commune code", "MAXA", refers_to="gazetteer"),
            F("old_commune_code", "str", "Mã xã cũ (trước 2025)", "Pre-2025 commune code",
              "MAXACU", refers_to="gazetteer"),
            F("sheet_no", "int", "Số hiệu tờ bản đồ", "Map sheet number", "SOTO"),
            F("parcel_no", "int", "Số thửa", "Parcel number", "SOTHUA"),
            F("land_use_codes", "str[]", "Mục đích sử dụng", "Land-use codes", "LOAIDAT",
              refers_to="land_use"),
            F("legal_area", "float", "Diện tích pháp lý (m²)", "Legal area (m²)", "DIENTICH",
              decimals=1),
            F("land_user", "str", "Người sử dụng đất", "Land user", "CHUSUDUNG", personal=True,
              in_tiles=False),
            F("land_user_id", "str", "Số CCCD người sử dụng", "Land user ID number", "SOCCCD",
              personal=True, in_tiles=False),
            F("certificate_no", "str", "Số giấy chứng nhận", "Certificate number", "SOGCN", in_tiles=False),
            F("use_until", "date", "Thời hạn sử dụng (trống = lâu dài)",
              "Use term end (empty = permanent)", "THOIHAN", in_tiles=False),
            F("origin", "str", "Nguồn gốc sử dụng", "Origin", "NGUONGOC", values=PARCEL_ORIGINS,
              in_tiles=False),
            # Legal time of this version (beside the system time of parcel_history).
            F("legal_valid_from", "date", "Có hiệu lực từ ngày", "Legally valid from", "HIEULUC",
              in_tiles=False),
            F("decision_no", "str", "Số quyết định, văn bản", "Decision number", "SOQD",
              in_tiles=False),
            F("version", "int", "Phiên bản", "Version", "PHIENBAN", in_tiles=False,
              server_managed=True),
            F("updated_at", "datetime", "Cập nhật lúc", "Updated at", "CAPNHAT", in_tiles=False,
              server_managed=True),
        ),
        style=Style(color="#8c6d31", weight=0.6, fill_opacity=0.35, by="land_use_codes"),
        min_zoom=15,
        history_table="parcel_history",
        # Sheets are numbered in the pre-2025 commune when there is one: the parcel keeps that
        # number across the merger while its key gains the new commune code.
        versions=Versions(valid_from="legal_valid_from", decision="decision_no",
                          identity=(("old_commune_code", "commune_code"), "sheet_no", "parcel_no"),
                          history_id="parcel_id"),
        keywords=("địa chính", "thửa đất", "cadastre"),
        natural_key=("commune_code", "old_commune_code", "sheet_no", "parcel_no"),
        import_roles=("land_officer",),
        identify=True,
    ),
    Layer(
        id="roads",
        title_vi="Giao thông",
        title_en="Roads and traffic",
        description_vi="Mạng lưới đường bộ và tình trạng giao thông.",
        description_en="Road network and traffic state.",
        domain="traffic",
        table="roads",
        geometry_type="LineString",
        time_column="traffic_at",
        fields=(
            F("name", "str", "Tên đường", "Name", "TENDUONG"),
            F("road_class", "str", "Cấp đường", "Road class", "CAPDUONG", values=ROAD_CLASSES),
            F("lanes", "int", "Số làn xe", "Lanes", "SOLAN"),
            F("max_speed", "int", "Tốc độ tối đa (km/h)", "Speed limit (km/h)", "TOCDO"),
            F("free_flow_speed", "int", "Tốc độ dòng tự do (km/h)", "Free-flow speed (km/h)",
              "TOCDOTUDO"),
            F("traffic_state", "str", "Tình trạng giao thông", "Traffic state", "TINHTRANG",
              values=TRAFFIC_STATES),
            # Live: the latest speed over the free-flow speed (or the speed limit), set by the
            # ingest from the segment's traffic_speed datastream; empty when not live.
            F("speed_ratio", "float", "Tỷ lệ tốc độ / tốc độ tự do", "Speed / free-flow speed",
              "TYLETOCDO", server_managed=True, decimals=3),
            F("traffic_at", "datetime", "Cập nhật giao thông", "Traffic updated at", "CAPNHAT"),
        ),
        style=Style(
            color="#636363",
            weight=2.0,
            by="traffic_state",
            palette={"free": "#1a9641", "moderate": "#fdae61", "heavy": "#f46d43",
                     "jammed": "#d7191c", "unknown": "#9e9e9e"},
            width_by="road_class",
            widths={"expressway": 4.5, "trunk": 3.5, "primary": 2.8, "secondary": 2, "local": 1.2},
            min_zooms={"secondary": 11, "local": 13},
        ),
        keywords=("giao thông", "đường", "traffic"),
        import_roles=("operator",),
        search_fields=("name",),
        search_merges_pieces=True,
        identify=True,
    ),
    Layer(
        id="tourism_places",
        title_vi="Điểm du lịch",
        title_en="Tourism places",
        description_vi="Di tích, lễ hội, làng nghề và dịch vụ du lịch.",
        description_en="Heritage sites, festivals, craft villages and tourist services.",
        domain="tourism",
        table="tourism_places",
        geometry_type="Point",
        fields=(
            F("name", "str", "Tên địa điểm", "Name", "TEN"),
            F("name_en", "str", "Tên tiếng Anh", "English name", "TEN_EN"),
            F("category", "str", "Loại hình", "Category", "LOAIHINH", values=TOURISM_CATEGORIES),
            F("address", "str", "Địa chỉ", "Address", "DIACHI"),
            F("rating", "float", "Đánh giá", "Rating", "DANHGIA", decimals=1),
            F("visitors_per_year", "int", "Lượt khách/năm", "Visitors per year", "LUOTKHACH"),
        ),
        style=Style(color="#1b9e77", radius=6, by="category"),
        keywords=("du lịch", "di tích", "tourism"),
        import_roles=("operator",),
        search_fields=("name", "name_en", "address"),
        label_priority=40,
    ),
    Layer(
        id="public_facilities",
        title_vi="Cơ sở công cộng",
        title_en="Public facilities",
        description_vi="Trụ sở UBND xã, phường, trường học, trạm y tế, bệnh viện, công an và "
        "phòng cháy chữa cháy.",
        description_en="Commune People's Committee offices, schools, health stations, hospitals, "
        "police and fire stations.",
        domain="services",
        table="public_facilities",
        geometry_type="Point",
        fields=(
            F("code", "str", "Mã cơ sở", "Facility code", "MACOSO"),
            F("name", "str", "Tên cơ sở", "Name", "TEN"),
            F("type", "str", "Loại cơ sở", "Type", "LOAI", values=FACILITY_TYPES),
            F("address", "str", "Địa chỉ", "Address", "DIACHI", in_tiles=False),
            F("capacity", "int", "Quy mô (học sinh, giường bệnh hoặc cán bộ)",
              "Capacity (pupils, beds or staff)", "QUYMO"),
            # Direct lines of the offices are for staff; the public calls 113, 114 and 115.
            F("phone", "str", "Số điện thoại trực", "Duty phone", "DIENTHOAI",
              access=Access.INTERNAL, in_tiles=False),
            F("commune_code", "str", "Mã xã", "Commune code", "MAXA", refers_to="gazetteer"),
        ),
        style=Style(color="#35478c", radius=6, by="type", palette=FACILITY_COLORS),
        keywords=("cơ sở công cộng", "trường học", "y tế", "công an", "public facilities"),
        natural_key=("code",),
        import_roles=("operator",),
        search_fields=("name", "address", "code"),
        identify=True,
        label_priority=50,
    ),
    Layer(
        id="cameras",
        title_vi="Camera giám sát",
        title_en="Surveillance cameras",
        description_vi="Camera giám sát giao thông, an ninh với vùng quan sát.",
        description_en="Traffic and security cameras with their fields of view.",
        domain="safety",
        table="cameras",
        geometry_type="Point",
        access=Access.INTERNAL,
        extra_geometry_columns=("fov",),
        map_kind="cameras",
        map_visible=False,
        fields=(
            F("code", "str", "Mã camera", "Camera code", "MACAMERA"),
            F("name", "str", "Tên camera", "Name", "TEN"),
            F("heading", "int", "Hướng quan sát (độ)", "Heading (degrees)", "HUONG"),
            F("fov_deg", "int", "Góc quan sát (độ)", "Field of view (degrees)", "GOCNHIN"),
            F("range_m", "int", "Tầm quan sát (m)", "Range (m)", "TAMXA"),
            F("status", "str", "Trạng thái", "Status", "TRANGTHAI", values=CAMERA_STATUS_VALUES),
            F("stream_url", "str", "Địa chỉ luồng video", "Stream URL", "LUONGVIDEO",
              access=Access.RESTRICTED, roles=("security_officer",), in_tiles=False),
            # Health from heartbeats (gis/sensors/cameras.py): set by the ingest and the sweep,
            # never by an imported file.
            F("last_seen", "datetime", "Tín hiệu cuối", "Last seen", "TINHIEUCUO",
              server_managed=True),
            F("fps", "float", "Số khung hình/giây", "Frames per second", "FPS", decimals=1,
              server_managed=True, in_tiles=False),
            F("bitrate_kbps", "float", "Tốc độ bit (kbit/s)", "Bitrate (kbit/s)", "BITRATE",
              decimals=0, server_managed=True, in_tiles=False),
            F("quality", "float", "Chất lượng tín hiệu", "Signal quality", "CHATLUONG", decimals=2,
              server_managed=True, in_tiles=False),
            F("status_changed_at", "datetime", "Đổi trạng thái lúc", "Status changed at",
              "DOITRANGTH", server_managed=True, in_tiles=False),
        ),
        style=Style(color="#2c7fb8", radius=5, by="status",
                    palette={"online": "#2c7fb8", "degraded": "#f16913", "offline": "#bdbdbd",
                             "maintenance": "#fec44f"}),
        keywords=("camera", "an ninh", "giám sát"),
        natural_key=("code",),
        import_roles=("operator", "security_officer"),
        search_fields=("code", "name"),
    ),
    Layer(
        id="sensors",
        title_vi="Cảm biến môi trường",
        title_en="Environmental sensors",
        description_vi="Trạm quan trắc không khí và nước.",
        description_en="Air and water monitoring stations.",
        domain="environment",
        table="sensors",
        geometry_type="Point",
        fields=(
            F("code", "str", "Mã trạm", "Station code", "MATRAM"),
            F("name", "str", "Tên trạm", "Name", "TEN"),
            F("kind", "str", "Loại", "Kind", "LOAI", values=SENSOR_KINDS),
            F("parameter", "str", "Thông số", "Parameter", "THONGSO"),
            F("unit", "str", "Đơn vị", "Unit", "DONVI"),
            F("threshold", "float", "Ngưỡng cảnh báo", "Threshold", "NGUONG", decimals=2),
            F("status", "str", "Trạng thái", "Status", "TRANGTHAI", values=STATUS_VALUES),
        ),
        style=Style(color="#41ab5d", radius=6, by="kind"),
        map_kind="sensors",
        keywords=("môi trường", "quan trắc", "sensors"),
        natural_key=("code",),
        import_roles=("operator",),
        search_fields=("code", "name"),
    ),
    Layer(
        id="incidents",
        title_vi="Sự cố, vụ việc",
        title_en="Incidents",
        description_vi="Sự cố, vụ việc tiếp nhận từ đường dây nóng, camera, người dân.",
        description_en="Incidents reported by hotline, cameras, citizens and patrols.",
        domain="safety",
        table="incidents",
        geometry_type="Point",
        access=Access.INTERNAL,
        row_rules=(RowRule("category", ("security_event",), ("security_officer", "leader")),),
        # Issue 17: everyone may read counts of incidents (heatmap, statistics, density, grid,
        # rates, change, dashboard series), with any cell, commune, category or bucket under 3
        # incidents suppressed and security events left out by the row rule above; the
        # incidents themselves stay internal.
        aggregates=Aggregates(access=Access.PUBLIC, min_count=3),
        map_kind="incidents",
        time_column="reported_at",
        fields=(
            F("category", "str", "Lĩnh vực", "Category", "LINHVUC", values=INCIDENT_CATEGORIES),
            F("severity", "int", "Mức độ", "Severity", "MUCDO", values=SEVERITIES),
            F("status", "str", "Trạng thái xử lý", "Status", "TRANGTHAI",
              values=INCIDENT_STATUSES),
            F("source", "str", "Nguồn tiếp nhận", "Source", "NGUON", values=INCIDENT_SOURCES),
            F("title", "str", "Tiêu đề", "Title", "TIEUDE"),
            F("description", "str", "Mô tả", "Description", "MOTA", in_tiles=False),
            F("commune_code", "str", "Mã xã", "Commune code", "MAXA", refers_to="gazetteer"),
            F("reported_at", "datetime", "Thời điểm tiếp nhận", "Reported at", "TIEPNHAN"),
            F("resolved_at", "datetime", "Thời điểm xử lý xong", "Resolved at", "XULYXONG"),
            # The workflow's (gis/reports): set by intake, routing and transitions, never by
            # an imported file. Citizen reports have a service code; the others may not.
            F("service_code", "str", "Lĩnh vực phản ánh", "Service", "DICHVU",
              server_managed=True),
            F("agency_code", "str", "Đơn vị xử lý", "Agency", "DONVI", server_managed=True),
            F("expected_at", "datetime", "Hạn xử lý", "Due", "HANXULY", server_managed=True),
            F("duplicate_of", "int", "Trùng với", "Duplicate of", "TRUNGVOI", server_managed=True),
            F("status_note", "str", "Ghi chú xử lý", "Status note", "GHICHU", in_tiles=False,
              server_managed=True),
            F("updated_at", "datetime", "Cập nhật lúc", "Updated at", "CAPNHAT",
              server_managed=True),
            # The first answer (resolved or rejected) and its time, kept by a trigger from the
            # transitions (migration 0018): the processing time of the transparency figures.
            F("answered_at", "datetime", "Thời điểm trả lời đầu tiên", "First answered at",
              "TRALOI", in_tiles=False, server_managed=True),
            F("answer", "str", "Kết quả trả lời đầu tiên", "First answer", "KETQUATL",
              values={k: INCIDENT_STATUSES[k] for k in ("resolved", "rejected")},
              in_tiles=False, server_managed=True),
        ),
        style=Style(color="#e6550d", radius=4, by="category", palette=INCIDENT_COLORS),
        keywords=("sự cố", "an ninh", "incidents"),
        import_roles=("operator",),
    ),
    # The values of the socio-economic indicators (gis/indicators), each with its unit's
    # boundary: one feature per unit, indicator and period, filtered by `indicator_code` and
    # `period` (or `datetime`, which the period's first day and the day after it answer).
    # A view over indicator_values, indicators and admin_units (migration 0026); an indicator
    # kept internal hides its rows through their own access level (row_access).
    Layer(
        id="indicators",
        title_vi="Chỉ tiêu kinh tế – xã hội theo đơn vị hành chính",
        title_en="Socio-economic indicators by administrative unit",
        description_vi="Giá trị các chỉ tiêu thống kê (dân số, diện tích, GRDP, thu ngân sách, "
        "doanh nghiệp, tỷ lệ hộ nghèo, trường học, giường bệnh, che phủ rừng...) của từng xã, "
        "huyện và tỉnh theo kỳ, kèm ranh giới đơn vị (dữ liệu mẫu). Lọc theo indicator_code và "
        "period.",
        description_en="Statistical indicator values (population, area, GRDP, budget revenue, "
        "enterprises, poverty rate, schools, hospital beds, forest cover...) of each commune, "
        "district and the province per period, with the unit's boundary (synthetic sample). "
        "Filter by indicator_code and period.",
        domain="admin",
        table="indicator_features",
        geometry_type="MultiPolygon",
        time_column="period_start",
        time_end_column="period_end",
        fields=(
            F("unit_code", "str", "Mã đơn vị hành chính", "Unit code", "MADVHC",
              refers_to="gazetteer"),
            F("unit_name", "str", "Tên đơn vị", "Unit name", "TENDV"),
            F("unit_level", "str", "Cấp", "Level", "CAP", values=ADMIN_LEVELS),
            F("indicator_code", "str", "Mã chỉ tiêu", "Indicator code", "MACHITIEU"),
            F("indicator_name", "str", "Tên chỉ tiêu", "Indicator", "CHITIEU", in_tiles=False),
            F("indicator_name_en", "str", "Tên chỉ tiêu (tiếng Anh)", "Indicator (English)",
              "CHITIEU_EN", in_tiles=False),
            F("measure_unit", "str", "Đơn vị tính", "Unit of measure", "DONVITINH"),
            F("indicator_domain", "str", "Lĩnh vực", "Domain", "LINHVUC",
              values=INDICATOR_DOMAINS),
            F("period", "str", "Kỳ số liệu", "Period", "KY"),
            F("period_start", "date", "Từ ngày", "Period start", "TUNGAY"),
            F("period_end", "date", "Đến trước ngày", "Period end (exclusive)", "DENNGAY"),
            F("value", "float", "Giá trị", "Value", "GIATRI", decimals=2),
        ),
        row_access=("access", "roles"),
        read_only=True,
        map_kind="none",
        map_visible=False,
        # A tile holds one indicator's values of one period (default: the population of its
        # latest period): unfiltered, every unit stacked once per indicator and period made
        # tiles of 1.6-4.3 MB.
        tile_filters=(TileFilter("indicator_code", default="POP"),
                      TileFilter("period", latest_by="period_start")),
        style=Style(color="#6a51a3", fill_opacity=0.5),
        keywords=("chỉ tiêu", "thống kê", "kinh tế xã hội", "indicators", "statistics"),
    ),
)

# The reporter of a citizen report (Open311 first_name, last_name, email, phone, device_id,
# account_id): personal data kept in `incident_reporters`, not fields of the incidents layer, so
# no generic way out (OGC items, tiles, search, identify, exports) can carry them. The one route
# that shows them asks layers.access about these fields and audits the read: operators, who
# call a reporter back, and administrators may read them; land officers' right to personal
# data is about land users and does not reach them (access RESTRICTED to operators).
REPORTER_FIELDS = tuple(
    F(name, "str", vi, en, short, personal=True, access=Access.RESTRICTED, roles=("operator",),
      in_tiles=False)
    for name, vi, en, short in (
        ("first_name", "Tên người phản ánh", "Reporter's given name", "TEN"),
        ("last_name", "Họ người phản ánh", "Reporter's family name", "HO"),
        ("email", "Thư điện tử", "E-mail", "EMAIL"),
        ("phone", "Số điện thoại", "Phone", "DIENTHOAI"),
        ("device_id", "Mã thiết bị", "Device id", "THIETBI"),
        ("account_id", "Mã tài khoản", "Account id", "TAIKHOAN"),
    ))

# Spatial tables that are not layers, each with the way out that serves it and the rule that
# guards it. A table with a geometry is a layer unless it is named here (tests/test_catalogue.py).
SPATIAL_TABLES_NOT_LAYERS: dict[str, str] = {
    "datastreams": "SensorThings Datastream.observedArea (/sta/v1.1), the datastream's access",
    "features_of_interest": "SensorThings FeaturesOfInterest (/sta/v1.1), the sensors layer's access",
    "thing_locations": "SensorThings Locations and HistoricalLocations (/sta/v1.1), the sensors "
                       "layer's access",
}

_BY_ID = {layer.id: layer for layer in LAYERS}


def get_layer(layer_id: str) -> Layer:
    try:
        return _BY_ID[layer_id]
    except KeyError:
        raise KeyError(f"unknown layer {layer_id!r}") from None


def layer_ids() -> tuple[str, ...]:
    return tuple(_BY_ID)


def gazetteer() -> Layer | None:
    """The administrative units with eras (valid from/to) that a click always asks about: the
    map's era switch, its place labels and "which commune is this" come from it."""
    return next((layer for layer in LAYERS if layer.time_end_column and layer.identify), None)


def label_field(layer: Layer) -> str | None:
    """The field a feature is called by (tooltips, detail titles, place labels, search hits):
    its name or title if it has one, else its first search field, natural key or text field."""
    for name in ("name", "title"):
        if name in layer.field_names:
            return name
    texts = [f.name for f in layer.fields if f.type == "str"]
    return next(iter(layer.search_fields or layer.natural_key or texts), None)
