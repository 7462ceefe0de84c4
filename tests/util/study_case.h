/*
 * study_case.h - the tiny two-domain case the study tests share: the
 * synthetic generator's source and target at a few hundred rows, and the
 * teacher, student (home, radio) and map configs that read them. Test-only
 * code.
 */
#ifndef CR_STUDY_CASE_H
#define CR_STUDY_CASE_H

/* Write text into dir/name (atomically); fails the test on error. */
void cr_test_put_file(const char *dir, const char *name, const char *text);
/* The case's synth settings (40 users, 5 genres, 300 source requests over 60
 * items, 80 target requests over 30) as a synth YAML into dir/synth.yaml,
 * and with write_data also its source.csv and target.csv into dir. */
void cr_test_study_data(const char *dir, int write_data);
/* teacher.yaml (source.csv: click, watch_time), home.yaml (target.csv:
 * click, engagement, discovery; popularity feature item_quality),
 * radio.yaml (complete) and map.yaml (teacher_click, its logit,
 * teacher_watch_time) into dir. */
void cr_test_study_configs(const char *dir);

#endif /* CR_STUDY_CASE_H */
