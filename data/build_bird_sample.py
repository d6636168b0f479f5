"""Build the BIRD-layout sample (deterministic; run from anywhere).

Writes data/bird/dev.json, data/bird/dev_tables.json and
data/bird/dev_databases/<db_id>/<db_id>.sqlite for two small invented databases whose
identifiers carry spaces, parentheses and `%`, as BIRD's do; every question has BIRD's
fields (question_id, db_id, question, evidence, SQL, difficulty). Checks each gold query runs
and returns rows.

    python data/build_bird_sample.py
"""

from __future__ import annotations

from pathlib import Path

from sample_builder import write_sample

HERE = Path(__file__).resolve().parent

OUT = HERE / "bird"

# The table shape of sample_builder: (table, [(column, sqlite type, spider type)],
# primary keys, foreign keys [(column, ref_table, ref_column)], rows).
DATABASES: dict[str, list[tuple]] = {
    "fuel_cards": [
        (
            "customers",
            [
                ("CustomerID", "INTEGER", "number"),
                ("Segment", "TEXT", "text"),
                ("Currency", "TEXT", "text"),
            ],
            ["CustomerID"],
            [],
            [
                (1, "SME", "EUR"),
                (2, "LAM", "CZK"),
                (3, "SME", "CZK"),
                (4, "KAM", "EUR"),
                (5, "SME", "CZK"),
                (6, "LAM", "EUR"),
                (7, "KAM", "CZK"),
            ],
        ),
        (
            "gas stations",
            [
                ("GasStationID", "INTEGER", "number"),
                ("Country", "TEXT", "text"),
                ("Chain Name", "TEXT", "text"),
                ("Discount (%)", "REAL", "number"),
            ],
            ["GasStationID"],
            [],
            [
                (10, "CZE", "Benzina", 2.5),
                (11, "CZE", "Shell", 4.0),
                (12, "SVK", "Slovnaft", 3.0),
                (13, "SVK", "OMV", 1.5),
                (14, "CZE", "MOL", 3.5),
            ],
        ),
        (
            "yearmonth",
            [
                ("CustomerID", "INTEGER", "number"),
                ("Date", "TEXT", "text"),
                ("Consumption", "REAL", "number"),
            ],
            ["CustomerID", "Date"],
            [("CustomerID", "customers", "CustomerID")],
            [
                (1, "201301", 120.5),
                (1, "201302", 80.0),
                (3, "201301", 45.25),
                (3, "201401", 60.0),
                (4, "201305", 300.0),
                (5, "201312", 10.0),
                (6, "201302", 99.0),
            ],
        ),
        (
            "transactions (1k)",
            [
                ("TransactionID", "INTEGER", "number"),
                ("CustomerID", "INTEGER", "number"),
                ("GasStationID", "INTEGER", "number"),
                ("Price (EUR)", "REAL", "number"),
                ("Amount", "INTEGER", "number"),
            ],
            ["TransactionID"],
            [
                ("CustomerID", "customers", "CustomerID"),
                ("GasStationID", "gas stations", "GasStationID"),
            ],
            [
                (100, 1, 10, 31.5, 2),
                (101, 2, 12, 54.0, 3),
                (102, 3, 13, 12.25, 1),
                (103, 4, 11, 80.0, 4),
                (104, 6, 12, 22.0, 1),
                (105, 7, 14, 45.0, 2),
            ],
        ),
    ],
    "school_meals": [
        (
            "frpm",
            [
                ("CDSCode", "TEXT", "text"),
                ("School Name", "TEXT", "text"),
                ("County Name", "TEXT", "text"),
                ("Enrollment (K-12)", "INTEGER", "number"),
                ("Free Meal Count (K-12)", "INTEGER", "number"),
                ("Percent (%) Eligible Free (K-12)", "REAL", "number"),
            ],
            ["CDSCode"],
            [],
            [
                ("01611", "Harbor Bay Elementary", "Alameda", 620, 150, 0.242),
                ("01612", "Lakeview Middle", "Alameda", 410, 300, 0.732),
                ("01613", "Oak Ridge High", "Alameda", 1250, 400, 0.32),
                ("10621", "Sunnyside Academy", "Fresno", 540, 480, 0.889),
                ("10622", "Cedar Creek Elementary", "Fresno", 330, 120, 0.364),
                ("19641", "Echo Park Prep", "Los Angeles", 880, 610, 0.693),
                ("19642", "Silver Lake Charter", "Los Angeles", 450, 90, 0.2),
            ],
        ),
        (
            "satscores",
            [
                ("cds", "TEXT", "text"),
                ("sname", "TEXT", "text"),
                ("NumTstTakr", "INTEGER", "number"),
                ("AvgScrMath", "INTEGER", "number"),
            ],
            ["cds"],
            [("cds", "frpm", "CDSCode")],
            [
                ("01613", "Oak Ridge High", 310, 512),
                ("10621", "Sunnyside Academy", 95, 478),
                ("19641", "Echo Park Prep", 205, 533),
                ("19642", "Silver Lake Charter", 120, 498),
            ],
        ),
    ],
}

# (db_id, question, evidence, gold SQL, difficulty)
QUESTIONS: list[tuple[str, str, str, str, str]] = [
    (
        "fuel_cards",
        "How many customers pay in euro?",
        "pay in euro refers to Currency = 'EUR'",
        "SELECT COUNT(*) FROM customers WHERE Currency = 'EUR'",
        "simple",
    ),
    (
        "fuel_cards",
        "What is the ratio of customers who pay in EUR against customers who pay in CZK?",
        "ratio = count(Currency = 'EUR') / count(Currency = 'CZK')",
        "SELECT CAST(SUM(Currency = 'EUR') AS REAL) / SUM(Currency = 'CZK') FROM customers",
        "moderate",
    ),
    (
        "fuel_cards",
        "Which gas station in the Czech Republic gives the highest discount?",
        "Czech Republic refers to Country = 'CZE'; highest discount refers to MAX(`Discount (%)`)",
        "SELECT GasStationID FROM \"gas stations\" WHERE Country = 'CZE' "
        'ORDER BY "Discount (%)" DESC LIMIT 1',
        "moderate",
    ),
    (
        "fuel_cards",
        "What was the total consumption of customers in the SME segment in 2013?",
        "SME segment refers to Segment = 'SME'; in 2013 refers to Date LIKE '2013%'",
        "SELECT SUM(T2.Consumption) FROM customers AS T1 JOIN yearmonth AS T2 "
        "ON T1.CustomerID = T2.CustomerID WHERE T1.Segment = 'SME' AND T2.Date LIKE '2013%'",
        "challenging",
    ),
    (
        "fuel_cards",
        "What is the average price of the transactions at gas stations in Slovakia?",
        "Slovakia refers to Country = 'SVK'; average price = AVG(`Price (EUR)`)",
        'SELECT AVG(T1."Price (EUR)") FROM "transactions (1k)" AS T1 JOIN "gas stations" '
        "AS T2 ON T1.GasStationID = T2.GasStationID WHERE T2.Country = 'SVK'",
        "moderate",
    ),
    (
        "fuel_cards",
        "Which chain runs the gas station where customer 7 paid?",
        "customer 7 refers to CustomerID = 7; chain refers to `Chain Name`",
        'SELECT T2."Chain Name" FROM "transactions (1k)" AS T1 JOIN "gas stations" AS T2 '
        "ON T1.GasStationID = T2.GasStationID WHERE T1.CustomerID = 7",
        "simple",
    ),
    (
        "school_meals",
        "How many schools in Alameda County have more than 500 students enrolled?",
        "Alameda County refers to `County Name` = 'Alameda'; students enrolled refers to "
        "`Enrollment (K-12)`",
        'SELECT COUNT(*) FROM frpm WHERE "County Name" = \'Alameda\' AND "Enrollment (K-12)" > 500',
        "simple",
    ),
    (
        "school_meals",
        "What is the highest eligible free rate of the schools in Fresno County?",
        "eligible free rate refers to `Percent (%) Eligible Free (K-12)`; Fresno County "
        "refers to `County Name` = 'Fresno'",
        'SELECT MAX("Percent (%) Eligible Free (K-12)") FROM frpm WHERE "County Name" = \'Fresno\'',
        "simple",
    ),
    (
        "school_meals",
        "Which school has the highest average math score?",
        "average math score refers to AvgScrMath; school refers to sname",
        "SELECT sname FROM satscores ORDER BY AvgScrMath DESC LIMIT 1",
        "simple",
    ),
    (
        "school_meals",
        "What is the free meal count of the school with the most SAT test takers?",
        "free meal count refers to `Free Meal Count (K-12)`; most SAT test takers refers "
        "to MAX(NumTstTakr)",
        'SELECT T1."Free Meal Count (K-12)" FROM frpm AS T1 JOIN satscores AS T2 '
        "ON T1.CDSCode = T2.cds ORDER BY T2.NumTstTakr DESC LIMIT 1",
        "moderate",
    ),
    (
        "school_meals",
        "List the schools in Los Angeles County where more than half of the students get "
        "free meals.",
        "Los Angeles County refers to `County Name` = 'Los Angeles'; more than half means "
        "`Free Meal Count (K-12)` / `Enrollment (K-12)` > 0.5",
        'SELECT "School Name" FROM frpm WHERE "County Name" = \'Los Angeles\' '
        'AND CAST("Free Meal Count (K-12)" AS REAL) / "Enrollment (K-12)" > 0.5',
        "challenging",
    ),
]


def main() -> None:
    """Write every file of the BIRD-layout sample and check that each gold query runs."""
    OUT.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "question_id": i,
            "db_id": db,
            "question": question,
            "evidence": evidence,
            "SQL": sql,
            "difficulty": difficulty,
        }
        for i, (db, question, evidence, sql, difficulty) in enumerate(QUESTIONS)
    ]
    write_sample(
        DATABASES, OUT / "dev_databases", OUT / "dev_tables.json", OUT / "dev.json", rows, "SQL"
    )


if __name__ == "__main__":
    main()
