/* GeoIOC: numbers, dates and times as a person reads them, in the browser (the command map and
 * the parcel pages). gis/fmt.py applies the same rules on the server.
 *
 * - Numbers: Vietnamese separators on Vietnamese pages (1.234,5), English ones on English pages
 *   (1,234.5); a field's stored decimals when it has them (a legal area 24.1 m² is "24,1").
 * - Times: Vietnam time (Asia/Ho_Chi_Minh), dd/mm/yyyy HH:mm in both languages, whatever the
 *   browser's own time zone; dates dd/mm/yyyy. What a person types into a date-time field is
 *   Vietnam time too (vnInputToDate / dateToVnInput), so a filter means the same days for an
 *   officer whose laptop is set to another zone. */
(function (G) {
  "use strict";

  const TZ = "Asia/Ho_Chi_Minh";
  // Vietnam has kept UTC+7 without daylight saving since 1975: typed times convert with it.
  const VN_OFFSET_MS = 7 * 3600000;
  const EMPTY = "–";
  const numberFormats = {};
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });

  function numberFormat(lang, min, max, group) {
    const key = [lang, min, max, group].join("|");
    if (!numberFormats[key]) {
      numberFormats[key] = new Intl.NumberFormat(lang === "en" ? "en-GB" : "vi-VN", {
        minimumFractionDigits: min, maximumFractionDigits: max, useGrouping: group,
      });
    }
    return numberFormats[key];
  }

  /** VALUE in LANG's separators: exactly DECIMALS decimals when given, else up to 2.
   * opts.group === false leaves out thousands separators (coordinates). */
  function number(value, lang, decimals, opts) {
    if (value == null || value === "" || Number.isNaN(Number(value))) return EMPTY;
    const min = decimals == null ? 0 : decimals;
    const max = decimals == null ? 2 : decimals;
    const text = numberFormat(lang, min, max, !(opts && opts.group === false)).format(Number(value));
    return text.replace(/^-(?=[0.,]*$)/, ""); // no "-0"
  }

  const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;

  /** {day, month, year, hour, minute} of VALUE (ISO text or Date) on Vietnam's clock. */
  function vnParts(value) {
    const d = value instanceof Date ? value : new Date(value);
    if (Number.isNaN(d.getTime())) return null;
    const out = {};
    for (const p of parts.formatToParts(d)) out[p.type] = p.value;
    return out;
  }

  /** dd/mm/yyyy: a plain date as it is, a date-time as its day in Vietnam. */
  function date(value) {
    if (value == null || value === "") return EMPTY;
    const m = typeof value === "string" && DATE_ONLY.exec(value);
    if (m) return `${m[3]}/${m[2]}/${m[1]}`;
    const p = vnParts(value);
    return p ? `${p.day}/${p.month}/${p.year}` : String(value);
  }

  /** dd/mm/yyyy HH:mm in Vietnam time (a plain date: dd/mm/yyyy). */
  function dateTime(value) {
    if (value == null || value === "") return EMPTY;
    if (typeof value === "string" && DATE_ONLY.test(value)) return date(value);
    const p = vnParts(value);
    return p ? `${p.day}/${p.month}/${p.year} ${p.hour}:${p.minute}` : String(value);
  }

  /** The value of an <input type=datetime-local> (YYYY-MM-DDTHH:mm) read as Vietnam time. */
  function vnInputToDate(text) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(text || "");
    if (!m) return new Date(NaN);
    return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) - VN_OFFSET_MS);
  }

  /** DATE as an <input type=datetime-local> value on Vietnam's clock. */
  function dateToVnInput(d) {
    return new Date(d.getTime() + VN_OFFSET_MS).toISOString().slice(0, 16);
  }

  G.fmt = { number, date, dateTime, vnParts, vnInputToDate, dateToVnInput, TZ };
})(window.GeoIOC = window.GeoIOC || {});
