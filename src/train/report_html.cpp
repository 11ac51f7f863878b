#include "blip/train/report_html.h"

#include "core/html_escape.h"

#include "blip/error.h"
#include "blip/io/atomic_write.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace blip::train {
namespace {

using json = nlohmann::json;

constexpr int kHistoryVersion = 1;
constexpr const char* kHistoryWhat = "train history";

// ---------------------------------------------------------------------------------------------
// Text helpers

std::string escape_html(const std::string& s) { return html::escape(s); }

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Like Python's str(datetime.timedelta(seconds=int(s))), which BLIP prints: "1:02:03".
std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "unknown";
  const auto total = static_cast<long long>(seconds);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Charts

struct Point {
  double x, y;  // y NaN: a gap in the line
};

struct Series {
  std::string name, color;
  std::vector<Point> points;
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool integer_x = false;
  std::vector<std::pair<double, std::string>> x_marks;  // labelled vertical guides (epochs)
};

// Geometry of one chart, in SVG user units.
constexpr double kChartW = 580, kChartH = 330;
constexpr double kMarginL = 72, kMarginR = 18, kMarginT = 62, kMarginB = 50;
constexpr double kPlotW = kChartW - kMarginL - kMarginR, kPlotH = kChartH - kMarginT - kMarginB;
constexpr int kTargetTicks = 6;
constexpr std::size_t kMaxMarkedPoints = 60;  // draw a dot per point up to this many
constexpr std::size_t kMaxMarkLabels = 24;    // label every k-th epoch guide above this many
constexpr double kCharWidth = 7.0;            // estimate for 12px sans-serif, for legend layout
constexpr double kMarkLabelRoom = 24;         // width an epoch guide's label needs

const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

// Keeps at most `max_points`: per bucket of consecutive points its lowest and highest values in
// their original order, so spikes survive; a bucket with no finite value becomes a gap.
std::vector<Point> thin_out(const std::vector<Point>& in, std::size_t max_points) {
  if (in.size() <= max_points) return in;
  const std::size_t buckets = std::max<std::size_t>(1, max_points / 2);
  std::vector<Point> out;
  out.reserve(max_points);
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t begin = in.size() * b / buckets, end = in.size() * (b + 1) / buckets;
    std::size_t lo = end, hi = end;
    for (std::size_t i = begin; i < end; ++i) {
      if (!std::isfinite(in[i].y)) continue;
      if (lo == end || in[i].y < in[lo].y) lo = i;
      if (hi == end || in[i].y > in[hi].y) hi = i;
    }
    if (lo == end) {
      out.push_back({in[begin].x, std::numeric_limits<double>::quiet_NaN()});
      continue;
    }
    out.push_back(in[std::min(lo, hi)]);
    if (lo != hi) out.push_back(in[std::max(lo, hi)]);
  }
  return out;
}

struct Axis {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> ticks;
};

double nice_step(double range, int target, bool integer) {
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (integer) step = std::max(1.0, std::round(step));
  return step;
}

// `expand`: widen the range to whole ticks (y axes); otherwise keep the data range (x axes).
Axis make_axis(double lo, double hi, bool expand, bool integer) {
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (hi - lo <= std::abs(hi) * 1e-12) {  // a flat series: give it some room
    const double pad = integer ? 1.0 : (hi == 0 ? 1.0 : std::abs(hi) * 0.1);
    lo -= pad;
    hi += pad;
  }
  Axis a;
  a.step = nice_step(hi - lo, kTargetTicks, integer);
  if (expand) {
    lo = std::floor(lo / a.step + 1e-9) * a.step;
    hi = std::ceil(hi / a.step - 1e-9) * a.step;
  }
  a.lo = lo;
  a.hi = hi;
  const double first = std::ceil(lo / a.step - 1e-9);
  for (int k = 0;; ++k) {  // by index, so that rounding does not accumulate
    const double t = (first + k) * a.step;
    if (t > hi + a.step * 1e-9) break;
    a.ticks.push_back(std::abs(t) < a.step * 1e-9 ? 0.0 : t);
  }
  return a;
}

// A tick label with as many digits as the tick spacing needs; scientific for tiny or huge values
// (learning rates: "2e-5", "2.5e-5").
std::string tick_label(double v, const Axis& axis) {
  if (v == 0) return "0";
  const double max_abs = std::max(std::abs(axis.lo), std::abs(axis.hi));
  const int step_exp = static_cast<int>(std::floor(std::log10(axis.step) + 1e-9));
  if (max_abs < 1e-3 || max_abs >= 1e6) {
    const int v_exp = static_cast<int>(std::floor(std::log10(std::abs(v)) + 1e-9));
    const int digits = std::clamp(v_exp - step_exp + 1, 0, 6);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*e", std::max(0, digits), v);
    std::string s = buf;  // "2.50e-05": trim mantissa zeros and exponent padding
    const std::size_t e = s.find('e');
    std::string mant = s.substr(0, e), ex = s.substr(e + 1);
    if (mant.find('.') != std::string::npos) {
      while (mant.back() == '0') mant.pop_back();
      if (mant.back() == '.') mant.pop_back();
    }
    const bool neg = ex[0] == '-';
    ex = ex.substr(1);
    while (ex.size() > 1 && ex[0] == '0') ex.erase(0, 1);
    return mant + "e" + (neg ? "-" : "") + ex;
  }
  const int decimals = std::clamp(-step_exp, 0, 8);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string num(double v) { return fmt("%.1f", v); }

std::string text_el(double x, double y, const std::string& anchor, const std::string& cls,
                    const std::string& text, const std::string& extra = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" text-anchor=\"" + anchor + "\" class=\"" +
         cls + "\"" + extra + ">" + escape_html(text) + "</text>\n";
}

std::string render_chart(const Chart& chart) {
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  std::size_t finite = 0;
  for (const Series& s : chart.series)
    for (const Point& p : s.points) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
      ++finite;
      xmin = std::min(xmin, p.x), xmax = std::max(xmax, p.x);
      ymin = std::min(ymin, p.y), ymax = std::max(ymax, p.y);
    }
  const Axis xa = make_axis(xmin, xmax, false, chart.integer_x);
  const Axis ya = make_axis(ymin, ymax, true, false);
  const auto px = [&](double x) { return kMarginL + (x - xa.lo) / (xa.hi - xa.lo) * kPlotW; };
  const auto py = [&](double y) { return kMarginT + (ya.hi - y) / (ya.hi - ya.lo) * kPlotH; };

  std::ostringstream o;
  o << "<svg class=\"chart\" viewBox=\"0 0 " << num(kChartW) << " " << num(kChartH)
    << "\" role=\"img\" aria-label=\"" << escape_html(chart.title) << "\">\n";
  o << "<rect x=\"0\" y=\"0\" width=\"" << num(kChartW) << "\" height=\"" << num(kChartH)
    << "\" class=\"bg\"/>\n";
  o << text_el(kChartW / 2, 20, "middle", "title", chart.title);

  // Legend: one row under the title, centred.
  double legend_w = 0;
  for (const Series& s : chart.series) legend_w += 34 + kCharWidth * s.name.size();
  double lx = std::max(4.0, (kChartW - legend_w) / 2);
  for (const Series& s : chart.series) {
    o << "<line x1=\"" << num(lx) << "\" y1=\"40\" x2=\"" << num(lx + 20)
      << "\" y2=\"40\" stroke=\"" << s.color << "\" stroke-width=\"3\"/>\n";
    o << text_el(lx + 25, 44, "start", "legend", s.name);
    lx += 34 + kCharWidth * s.name.size();
  }

  // Grid, ticks and tick labels.
  if (finite > 0) {
    for (double t : ya.ticks) {
      const double y = py(t);
      o << "<line x1=\"" << num(kMarginL) << "\" y1=\"" << num(y) << "\" x2=\""
        << num(kMarginL + kPlotW) << "\" y2=\"" << num(y) << "\" class=\"grid\"/>\n";
      o << text_el(kMarginL - 6, y + 4, "end", "tick", tick_label(t, ya));
    }
    for (double t : xa.ticks) {
      const double x = px(t);
      o << "<line x1=\"" << num(x) << "\" y1=\"" << num(kMarginT) << "\" x2=\"" << num(x)
        << "\" y2=\"" << num(kMarginT + kPlotH) << "\" class=\"grid\"/>\n";
      o << text_el(x, kMarginT + kPlotH + 16, "middle", "tick", tick_label(t, xa));
    }
    const std::size_t every = chart.x_marks.size() / kMaxMarkLabels + 1;
    for (std::size_t i = 0; i < chart.x_marks.size(); ++i) {
      const auto& [mx, label] = chart.x_marks[i];
      if (!(mx >= xa.lo && mx <= xa.hi)) continue;
      o << "<line x1=\"" << num(px(mx)) << "\" y1=\"" << num(kMarginT) << "\" x2=\"" << num(px(mx))
        << "\" y2=\"" << num(kMarginT + kPlotH) << "\" class=\"mark\"/>\n";
      // Labels sit left of their guide, except at the left edge where the tick labels are.
      const bool at_left = px(mx) - kMarginL < kMarkLabelRoom;
      if (i % every == 0)
        o << text_el(px(mx) + (at_left ? 2 : -2), kMarginT + 10, at_left ? "start" : "end",
                     "marklabel", label);
    }
  }
  o << "<rect x=\"" << num(kMarginL) << "\" y=\"" << num(kMarginT) << "\" width=\"" << num(kPlotW)
    << "\" height=\"" << num(kPlotH) << "\" class=\"frame\"/>\n";
  o << text_el(kMarginL + kPlotW / 2, kChartH - 10, "middle", "axislabel", chart.x_label);
  const double ly = kMarginT + kPlotH / 2;
  o << text_el(16, ly, "middle", "axislabel", chart.y_label,
               " transform=\"rotate(-90 16 " + num(ly) + ")\"");
  if (finite == 0) {
    o << text_el(kMarginL + kPlotW / 2, ly, "middle", "nodata", "no data yet");
    return o.str() + "</svg>\n";
  }

  // Curves: a path per series, broken at gaps, plus dots when there are few points.
  for (const Series& s : chart.series) {
    std::string d;
    bool pen_down = false;
    std::size_t count = 0;
    for (const Point& p : s.points) {
      if (!std::isfinite(p.y) || !std::isfinite(p.x)) {
        pen_down = false;
        continue;
      }
      d += (pen_down ? " L" : " M") + num(px(p.x)) + " " + num(py(p.y));
      pen_down = true;
      ++count;
    }
    if (count == 0) continue;
    o << "<path d=\"" << d.substr(1) << "\" fill=\"none\" stroke=\"" << s.color
      << "\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n";
    if (count <= kMaxMarkedPoints) {
      for (const Point& p : s.points)
        if (std::isfinite(p.y) && std::isfinite(p.x))
          o << "<circle cx=\"" << num(px(p.x)) << "\" cy=\"" << num(py(p.y)) << "\" r=\"3\" fill=\""
            << s.color << "\"/>\n";
    }
  }
  return o.str() + "</svg>\n";
}

Series step_series(const TrainHistory& h, const std::string& name, std::size_t color,
                   double StepPoint::*field, bool positive_only = false) {
  Series s{name, kPalette[color % std::size(kPalette)], {}};
  std::vector<Point> pts;
  pts.reserve(h.steps.size());
  for (const StepPoint& p : h.steps) {
    double y = p.*field;
    if (positive_only && !(y > 0)) y = std::numeric_limits<double>::quiet_NaN();
    pts.push_back({static_cast<double>(p.step), y});
  }
  s.points = thin_out(pts, kMaxPointsPerCurve);
  return s;
}

// The epoch curves: BLIP's headline recalls and the overall mean.
const std::pair<const char*, double eval::RetrievalMetrics::*> kRecallCurves[] = {
    {"txt_r1", &eval::RetrievalMetrics::txt_r1}, {"img_r1", &eval::RetrievalMetrics::img_r1},
    {"txt_r5", &eval::RetrievalMetrics::txt_r5}, {"img_r5", &eval::RetrievalMetrics::img_r5},
    {"r_mean", &eval::RetrievalMetrics::r_mean}};

Chart recall_chart(const TrainHistory& h, bool test) {
  Chart c;
  c.title = test ? "Test recall (epochs where test was evaluated)" : "Validation recall";
  c.x_label = "epoch";
  c.y_label = "recall (%)";
  c.integer_x = true;
  std::size_t color = 0;
  for (const auto& [name, field] : kRecallCurves) {
    Series s{name, kPalette[color++ % std::size(kPalette)], {}};
    for (const EpochPoint& e : h.epochs) {
      if (test && !e.has_test) continue;
      s.points.push_back({static_cast<double>(e.epoch), (test ? e.test : e.val).*field});
    }
    s.points = thin_out(s.points, kMaxPointsPerCurve);
    c.series.push_back(std::move(s));
  }
  return c;
}

// BLIP's rule: the first epoch with the highest val r_mean (strictly greater replaces).
const EpochPoint* best_epoch(const TrainHistory& h) {
  const EpochPoint* best = nullptr;
  for (const EpochPoint& e : h.epochs)
    if (best == nullptr || e.val.r_mean > best->val.r_mean) best = &e;
  return best;
}

const char* const kStyle = R"(
body{font-family:sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:24px 0 8px}
table{border-collapse:collapse;font-size:13px;background:#fff}
td,th{border:1px solid #ddd;padding:3px 8px}th{background:#f0f0f0;font-weight:600}
table.info th{text-align:left}table.metrics td{text-align:right}
tr.best td{background:#fff5cc}
.charts{display:flex;flex-wrap:wrap;gap:12px;margin-top:16px}
svg.chart{width:560px;height:auto;border:1px solid #ddd;background:#fff}
svg .bg{fill:#fff}svg .frame{fill:none;stroke:#666;stroke-width:1}
svg .grid{stroke:#e4e4e4;stroke-width:1}svg .mark{stroke:#bbb;stroke-width:1;stroke-dasharray:4 3}
svg text{font-family:sans-serif;fill:#222}svg .title{font-size:15px;font-weight:600}
svg .legend,svg .tick{font-size:12px}svg .tick{fill:#444}svg .axislabel{font-size:13px}
svg .marklabel{font-size:10px;fill:#888}svg .nodata{font-size:14px;fill:#999}
footer{margin-top:24px;font-size:11px;color:#888}
)";

void info_row(std::ostringstream& o, const std::string& name, const std::string& value) {
  o << "<tr><th>" << escape_html(name) << "</th><td>" << escape_html(value) << "</td></tr>\n";
}

void metrics_cells(std::ostringstream& o, const eval::RetrievalMetrics& m, bool present) {
  const double eval::RetrievalMetrics::*fields[] = {
      &eval::RetrievalMetrics::txt_r1, &eval::RetrievalMetrics::txt_r5,
      &eval::RetrievalMetrics::txt_r10, &eval::RetrievalMetrics::img_r1,
      &eval::RetrievalMetrics::img_r5, &eval::RetrievalMetrics::img_r10,
      &eval::RetrievalMetrics::r_mean};
  for (auto f : fields) o << "<td>" << (present ? fmt("%.2f", m.*f) : "&ndash;") << "</td>";
}

// ---------------------------------------------------------------------------------------------
// History JSON

const json& member(const json& obj, const std::string& key, const std::string& where) {
  if (!obj.is_object()) fail(kHistoryWhat, "'" + where + "' must be an object");
  const auto it = obj.find(key);
  if (it == obj.end()) fail(kHistoryWhat, "missing key '" + where + "." + key + "'");
  return *it;
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

double as_double(const json& v, const std::string& where) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!v.is_number()) fail(kHistoryWhat, "'" + where + "' must be a number or null");
  return v.get<double>();
}

std::int64_t as_int(const json& v, const std::string& where) {
  if (!v.is_number_integer()) fail(kHistoryWhat, "'" + where + "' must be an integer");
  return v.get<std::int64_t>();
}

json metrics_to_json(const eval::RetrievalMetrics& m) {
  json j = json::object();
  for (const auto& [key, value] : m.items()) j[key] = number_or_null(value);
  return j;
}

eval::RetrievalMetrics metrics_from_json(const json& j, const std::string& where) {
  // The members in RetrievalMetrics::items() order.
  eval::RetrievalMetrics m;
  double* fields[] = {&m.txt_r1, &m.txt_r5, &m.txt_r10, &m.txt_r_mean, &m.img_r1,
                      &m.img_r5, &m.img_r10, &m.img_r_mean, &m.r_mean};
  const auto keys = m.items();
  if (keys.size() != std::size(fields)) fail(kHistoryWhat, "internal: metric list mismatch");
  for (std::size_t i = 0; i < keys.size(); ++i)
    *fields[i] = as_double(member(j, keys[i].first, where), where + "." + keys[i].first);
  return m;
}

const std::pair<const char*, double StepPoint::*> kStepColumns[] = {
    {"epoch", &StepPoint::epoch},       {"loss_ita", &StepPoint::loss_ita},
    {"loss_itm", &StepPoint::loss_itm}, {"lr", &StepPoint::lr},
    {"images_per_s", &StepPoint::images_per_s}};

}  // namespace

nlohmann::json TrainHistory::to_json() const {
  json cols = json::object();
  json step_col = json::array();
  for (const StepPoint& p : steps) step_col.push_back(p.step);
  cols["step"] = std::move(step_col);
  for (const auto& [name, field] : kStepColumns) {
    json col = json::array();
    for (const StepPoint& p : steps) col.push_back(number_or_null(p.*field));
    cols[name] = std::move(col);
  }
  json ep = json::array();
  for (const EpochPoint& e : epochs) {
    json j = {{"epoch", e.epoch}, {"step", e.step}, {"val", metrics_to_json(e.val)}};
    if (e.has_test) j["test"] = metrics_to_json(e.test);
    ep.push_back(std::move(j));
  }
  return json{{"version", kHistoryVersion}, {"steps", std::move(cols)}, {"epochs", std::move(ep)}};
}

TrainHistory TrainHistory::from_json(const nlohmann::json& j) {
  const std::int64_t version = as_int(member(j, "version", "history"), "history.version");
  if (version != kHistoryVersion)
    fail(kHistoryWhat, "unsupported version " + std::to_string(version) + " (this build reads " +
                           std::to_string(kHistoryVersion) + ")");
  TrainHistory h;
  const json& cols = member(j, "steps", "history");
  const json& step_col = member(cols, "step", "steps");
  if (!step_col.is_array()) fail(kHistoryWhat, "'steps.step' must be an array");
  h.steps.resize(step_col.size());
  for (std::size_t i = 0; i < step_col.size(); ++i)
    h.steps[i].step = as_int(step_col[i], "steps.step[" + std::to_string(i) + "]");
  for (const auto& [name, field] : kStepColumns) {
    const std::string where = std::string("steps.") + name;
    const json& col = member(cols, name, "steps");
    if (!col.is_array() || col.size() != h.steps.size())
      fail(kHistoryWhat, "'" + where + "' must be an array as long as 'steps.step' (" +
                             std::to_string(h.steps.size()) + ")");
    for (std::size_t i = 0; i < col.size(); ++i)
      h.steps[i].*field = as_double(col[i], where + "[" + std::to_string(i) + "]");
  }
  const json& ep = member(j, "epochs", "history");
  if (!ep.is_array()) fail(kHistoryWhat, "'history.epochs' must be an array");
  for (std::size_t i = 0; i < ep.size(); ++i) {
    const std::string where = "epochs[" + std::to_string(i) + "]";
    EpochPoint e;
    e.epoch = as_int(member(ep[i], "epoch", where), where + ".epoch");
    e.step = as_int(member(ep[i], "step", where), where + ".step");
    e.val = metrics_from_json(member(ep[i], "val", where), where + ".val");
    if (ep[i].contains("test")) {
      e.has_test = true;
      e.test = metrics_from_json(ep[i]["test"], where + ".test");
    }
    h.epochs.push_back(e);
  }
  return h;
}

void TrainHistory::truncate_after(std::int64_t step) {
  steps.erase(std::remove_if(steps.begin(), steps.end(),
                             [step](const StepPoint& p) { return p.step > step; }),
              steps.end());
  epochs.erase(std::remove_if(epochs.begin(), epochs.end(),
                              [step](const EpochPoint& e) { return e.step > step; }),
               epochs.end());
}

std::string render_report_html(const TrainHistory& history, const ReportInfo& info) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
    << escape_html(info.title) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
  o << "<h1>" << escape_html(info.title) << "</h1>\n<table class=\"info\">\n";
  info_row(o, "Config", info.config_path);
  info_row(o, "Dataset", info.dataset);
  info_row(o, "World size", std::to_string(info.world_size));
  info_row(o, "Precision", info.precision);
  info_row(o, "Device", info.device);
  info_row(o, "Elapsed", format_duration(info.elapsed_s) + " (" + fmt("%.0f", info.elapsed_s) + " s)");
  double ips_sum = 0, ips_last = 0;
  std::size_t ips_n = 0;
  for (const StepPoint& p : history.steps)
    if (std::isfinite(p.images_per_s) && p.images_per_s > 0) {
      ips_sum += p.images_per_s;
      ips_last = p.images_per_s;
      ++ips_n;
    }
  info_row(o, "Images/s", ips_n ? fmt("%.1f mean", ips_sum / ips_n) + ", " + fmt("%.1f last", ips_last)
                                : std::string("unknown"));
  info_row(o, "Steps", history.steps.empty() ? std::string("none")
                                             : std::to_string(history.steps.back().step) + " (" +
                                                   std::to_string(history.steps.size()) + " logged)");
  const EpochPoint* best = best_epoch(history);
  info_row(o, "Evaluations", std::to_string(history.epochs.size()));
  if (best != nullptr) {
    std::string v = "epoch " + std::to_string(best->epoch) + ": val r_mean " + fmt("%.2f", best->val.r_mean);
    if (best->has_test) v += ", test r_mean " + fmt("%.2f", best->test.r_mean);
    info_row(o, "Best epoch", v);
  }
  for (const auto& [name, value] : info.extra) info_row(o, name, value);
  o << "</table>\n<div class=\"charts\">\n";

  std::vector<std::pair<double, std::string>> marks;
  for (const EpochPoint& e : history.epochs)
    marks.push_back({static_cast<double>(e.step), "e" + std::to_string(e.epoch)});
  Chart loss{"Training losses", "step", "loss", {}, /*integer_x=*/true, marks};
  loss.series.push_back(step_series(history, "loss_ita", 0, &StepPoint::loss_ita));
  loss.series.push_back(step_series(history, "loss_itm", 1, &StepPoint::loss_itm));
  Chart lr{"Learning rate", "step", "lr", {}, /*integer_x=*/true, marks};
  lr.series.push_back(step_series(history, "lr", 2, &StepPoint::lr));
  Chart speed{"Throughput", "step", "images / s", {}, /*integer_x=*/true, marks};
  speed.series.push_back(step_series(history, "images/s", 4, &StepPoint::images_per_s, true));
  o << render_chart(loss) << render_chart(lr) << render_chart(recall_chart(history, false));
  const bool any_test = std::any_of(history.epochs.begin(), history.epochs.end(),
                                    [](const EpochPoint& e) { return e.has_test; });
  if (any_test) o << render_chart(recall_chart(history, true));
  o << render_chart(speed) << "</div>\n";

  o << "<h2>Evaluations</h2>\n<table class=\"metrics\">\n<tr><th rowspan=\"2\">epoch</th>"
       "<th rowspan=\"2\">step</th><th colspan=\"7\">val</th><th colspan=\"7\">test</th></tr>\n<tr>";
  for (int split = 0; split < 2; ++split)
    for (const char* k : {"txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean"})
      o << "<th>" << k << "</th>";
  o << "</tr>\n";
  for (const EpochPoint& e : history.epochs) {
    o << "<tr" << (&e == best ? " class=\"best\"" : "") << "><td>" << e.epoch << "</td><td>"
      << e.step << "</td>";
    metrics_cells(o, e.val, true);
    metrics_cells(o, e.test, e.has_test);
    o << "</tr>\n";
  }
  o << "</table>\n<footer>Written by libblip. Charts thinned to at most " << kMaxPointsPerCurve
    << " points per curve.</footer>\n</body>\n</html>\n";
  return o.str();
}

void write_report_html(const std::string& path, const TrainHistory& history, const ReportInfo& info) {
  io::write_file_atomic(path, render_report_html(history, info));
}

}  // namespace blip::train
