"""Who is in space, per craft: seed 004's astronaut job, offline.

The seed's job asked a public web service for the people in space. These machines (and many Spark
clusters) have no way out to the internet, so the roster is embedded: the launcher's local backend and
its tests run the same job anywhere in a few seconds on `spark-submit --master 'local[*]'`.

    spark-submit --master 'local[*]' astronauts.py [--craft ISS] [--partitions N] [--fail]

--craft keeps one craft (case-insensitive; unknown: an empty result, still a success), --partitions
spreads the roster over N partitions (default 2, so executors have work), --fail raises after the
report (a job that ends FAILED, to exercise the launcher's failure path).
"""

from __future__ import annotations

import argparse
import sys

# The people in space when the seed's README was written (its example output).
ROSTER = [
    ("Oleg Kononenko", "ISS"),
    ("Nikolai Chub", "ISS"),
    ("Tracy Caldwell Dyson", "ISS"),
    ("Matthew Dominick", "ISS"),
    ("Michael Barratt", "ISS"),
    ("Jeanette Epps", "ISS"),
    ("Alexander Grebenkin", "ISS"),
    ("Butch Wilmore", "ISS"),
    ("Sunita Williams", "ISS"),
    ("Li Guangsu", "Tiangong"),
    ("Li Cong", "Tiangong"),
    ("Ye Guangfu", "Tiangong"),
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Astronauts in space, grouped per craft (offline roster).")
    ap.add_argument("--craft", help="only this craft (case-insensitive)")
    ap.add_argument("--partitions", type=int, default=2, help="partitions of the roster (default 2)")
    ap.add_argument("--fail", action="store_true", help="exit with an error after the report")
    return ap.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # Imported here so --help works without Spark.
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.appName("astronauts").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        people = spark.createDataFrame(ROSTER, schema="name string, craft string").repartition(max(1, args.partitions))
        if args.craft:
            people = people.where(F.lower(F.col("craft")) == args.craft.lower())
        per_craft = (
            people.groupBy("craft")
            .agg(F.count("*").alias("people"), F.sort_array(F.collect_list("name")).alias("names"))
            .orderBy(F.desc("people"), "craft")
            .collect()
        )
        total = sum(row["people"] for row in per_craft)
        print(f"Astronauts in space now: {total}" + (f" (craft {args.craft})" if args.craft else ""))
        for row in per_craft:
            print(f"{row['craft']}: {row['people']}")
            for name in row["names"]:
                print(f"- {name} ({row['craft']})")
    finally:
        spark.stop()
    if args.fail:
        print("failing on request (--fail)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
