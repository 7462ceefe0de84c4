/*
 * progress.c - the progress line of every long job: "label 12.0k/23.6k rows
 * | 8.1k rows/s | 0:01 elapsed, eta 0:01". On a terminal one line is
 * redrawn in place five times a second; anywhere else (a log, nohup, a
 * pipe) a whole line is printed every CR_METER_LOG_SECONDS, so a log shows
 * that a job is alive and when it will end. Only formats and prints; it
 * never decides anything about the job.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void cr_meter_start(cr_meter *m, FILE *out, const char *label, int64_t total, const char *unit) {
    memset(m, 0, sizeof *m);
    m->out = out;
    m->tty = out && isatty(fileno(out));
    m->t0 = cr_now();
    m->last = m->t0; /* the first line after one interval, not at once */
    m->total = total;
    snprintf(m->label, sizeof m->label, "%s", label);
    snprintf(m->unit, sizeof m->unit, "%s", unit);
}

void cr_meter_count(char *buf, size_t n, double v) {
    if (v >= 1e6) snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e4) snprintf(buf, n, "%.1fk", v / 1e3);
    else snprintf(buf, n, "%.0f", v);
}

void cr_meter_clock(char *buf, size_t n, double s) {
    long t = s > 0 ? (long)(s + 0.5) : 0;
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void cr_meter_update(cr_meter *m, int64_t done, double rate_count, const char *rate_unit,
                     const char *extra, int force) {
    if (!m->out) return;
    double now = cr_now();
    if (!force && now - m->last < (m->tty ? 0.2 : CR_METER_LOG_SECONDS)) return;
    m->last = now;
    m->printed = 1;
    double el = now - m->t0;
    char d[32], t[32], r[32], e[32], left[32];
    cr_meter_count(d, sizeof d, (double)done);
    cr_meter_count(r, sizeof r, el > 0 ? rate_count / el : 0);
    cr_meter_clock(e, sizeof e, el);
    char line[768];
    int o = snprintf(line, sizeof line, "%s %s", m->label, d);
    if (m->total > 0) {
        cr_meter_count(t, sizeof t, (double)m->total);
        o += snprintf(line + o, sizeof line - (size_t)o, "/%s", t);
    }
    o += snprintf(line + o, sizeof line - (size_t)o, " %s | %s %s/s", m->unit, r,
                  rate_unit ? rate_unit : m->unit);
    if (extra && extra[0] && o < (int)sizeof line)
        o += snprintf(line + o, sizeof line - (size_t)o, " | %s", extra);
    if (o < (int)sizeof line) o += snprintf(line + o, sizeof line - (size_t)o, " | %s elapsed", e);
    if (m->total > 0 && done > 0 && done < m->total && o < (int)sizeof line) {
        cr_meter_clock(left, sizeof left, el / (double)done * (double)(m->total - done));
        snprintf(line + o, sizeof line - (size_t)o, ", eta %s", left);
    }
    if (m->tty) fprintf(m->out, "\r\033[K%s", line);
    else fprintf(m->out, "%s\n", line);
    fflush(m->out);
}

void cr_meter_done(cr_meter *m) {
    if (m->out && m->tty && m->printed) {
        fputc('\n', m->out);
        fflush(m->out);
    }
    m->printed = 0;
}
