#!/usr/bin/env python3
"""music_log.py - writes the small synthetic listening log of
examples/impressions/ (plays.csv, tracks.csv, listeners.csv): a music-like
catalogue whose tracks have an artist, genres and a release year, and
listeners who play tracks of their favourite genres more often. Only the
standard library; the same seed writes the same bytes.

    python3 tools/music_log.py examples/impressions
"""
import csv
import random
import sys
from datetime import datetime, timedelta, timezone

GENRES = ["rock", "indie", "pop", "electronic", "jazz", "folk", "hip-hop", "classical",
          "metal", "soul", "ambient", "country"]
COUNTRIES = ["DE", "FR", "GB", "JP", "US", "BR"]


def main(out_dir: str, seed: int = 7, users: int = 120, artists: int = 40, tracks: int = 300,
         plays: int = 2500) -> None:
    rng = random.Random(seed)
    artist_genres = [rng.sample(GENRES, rng.choice([1, 2])) for _ in range(artists)]
    catalogue = []
    for t in range(tracks):
        a = min(int(rng.paretovariate(1.2)) - 1, artists - 1) if t % 3 else rng.randrange(artists)
        genres = list(artist_genres[a])
        if rng.random() < 0.3:
            extra = rng.choice(GENRES)
            if extra not in genres:
                genres.append(extra)
        year = rng.choice([rng.randint(1965, 2020), rng.randint(2015, 2024)])
        catalogue.append({"track_id": f"t{t:04d}", "title": f"Track {t}",
                          "artist": f"Artist {a:02d}", "genres": "|".join(genres),
                          "year": year, "pop": 1.0 / (1 + t % 97) ** 0.8,
                          "length": rng.randint(120, 420)})
    listeners = []
    for u in range(users):
        listeners.append({"user_id": f"u{u:03d}", "country": rng.choice(COUNTRIES),
                          "age_band": rng.choice(["18-24", "25-34", "35-44", "45+"]),
                          "taste": set(rng.sample(GENRES, 2)),
                          "activity": rng.paretovariate(1.5)})
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    span = (datetime(2024, 12, 31, tzinfo=timezone.utc) - start).total_seconds()
    weights_u = [l["activity"] for l in listeners]
    rows = []
    for _ in range(plays):
        l = rng.choices(listeners, weights=weights_u)[0]
        when = start + timedelta(seconds=int(rng.random() * span))
        shown = [c for c in catalogue if c["year"] <= when.year]
        w = [c["pop"] * (4.0 if l["taste"] & set(c["genres"].split("|")) else 1.0) for c in shown]
        c = rng.choices(shown, weights=w)[0]
        liked = bool(l["taste"] & set(c["genres"].split("|")))
        ratio = min(1.0, max(0.02, rng.betavariate(4 if liked else 1.5, 1.5)))
        rows.append((when, l["user_id"], c["track_id"], round(ratio * c["length"]), c["length"]))
    rows.sort(key=lambda r: r[0])
    with open(f"{out_dir}/plays.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["listener", "track", "played_at", "seconds", "play_ratio", "skipped"])
        for when, user, track, sec, length in rows:
            ratio = sec / length
            w.writerow([user, track, when.strftime("%Y-%m-%dT%H:%M:%SZ"), sec,
                        f"{ratio:.3f}", int(ratio < 0.3)])
    with open(f"{out_dir}/tracks.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["track_id", "title", "artist", "genres", "year"])
        for c in catalogue:
            w.writerow([c["track_id"], c["title"], c["artist"], c["genres"], c["year"]])
    with open(f"{out_dir}/listeners.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["user_id", "country", "age_band"])
        for l in listeners:
            w.writerow([l["user_id"], l["country"], l["age_band"]])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/impressions")
