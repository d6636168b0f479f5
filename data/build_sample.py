"""Build the sample MaskSQL dataset in Spider layout (deterministic; run from anywhere).

Writes data/tables.json, data/1_input.json and data/databases/<db_id>/<db_id>.sqlite for three
small invented databases (music festival, university, German cities with umlaut names), then
runs every gold query to check it executes.

    python data/build_sample.py
"""

from __future__ import annotations

from pathlib import Path

from sample_builder import write_sample

HERE = Path(__file__).resolve().parent

# Per database: tables as (name, [(column, sqlite type, spider type)], primary key columns,
# foreign keys [(column, ref_table, ref_column)], rows).
DATABASES: dict[str, list[tuple]] = {
    "music_festival": [
        (
            "stadium",
            [
                ("stadium_id", "INTEGER", "number"),
                ("name", "TEXT", "text"),
                ("location", "TEXT", "text"),
                ("capacity", "INTEGER", "number"),
            ],
            ["stadium_id"],
            [],
            [
                (1, "Hampden Park", "Glasgow", 52500),
                (2, "Stark's Park", "Kirkcaldy", 10104),
                (3, "Balmoor", "Peterhead", 4000),
                (4, "Glebe Park", "Brechin", 3960),
                (5, "Somerset Park", "Ayr", 11998),
            ],
        ),
        (
            "singer",
            [
                ("singer_id", "INTEGER", "number"),
                ("name", "TEXT", "text"),
                ("country", "TEXT", "text"),
                ("age", "INTEGER", "number"),
                ("Home Town", "TEXT", "text"),
                ("is_male", "TEXT", "text"),
            ],
            ["singer_id"],
            [],
            [
                (1, "Joe Sharp", "Netherlands", 52, "Utrecht", "F"),
                (2, "Timbaland", "United States", 32, "Norfolk", "T"),
                (3, "Justin Brown", "France", 29, "Lyon", "T"),
                (4, "Rose White", "France", 41, "Nantes", "F"),
                (5, "John Nizinik", "France", 43, "Lille", "T"),
                (6, "Tribal King", "France", 25, "Paris", "T"),
                (7, "Liam O'Brien", "Ireland", 36, "Cork", "T"),
                (8, "Aoife Byrne", "Ireland", 45, None, "F"),
            ],
        ),
        (
            "concert",
            [
                ("concert_id", "INTEGER", "number"),
                ("concert_name", "TEXT", "text"),
                ("theme", "TEXT", "text"),
                ("stadium_id", "INTEGER", "number"),
                ("year", "INTEGER", "number"),
            ],
            ["concert_id"],
            [("stadium_id", "stadium", "stadium_id")],
            [
                (1, "Auditions", "Free choice", 1, 2014),
                (2, "Super bootcamp", "Free choice 2", 2, 2014),
                (3, "Home Visits", "Bleeding Love", 2, 2015),
                (4, "Week 1", "Wide Awake", 5, 2014),
                (5, "Week 2", "Summer Nights", 1, 2015),
                (6, "Seaside Sessions", "Summer Nights", 3, 2013),
            ],
        ),
        (
            "singer_in_concert",
            [
                ("concert_id", "INTEGER", "number"),
                ("singer_id", "INTEGER", "number"),
            ],
            ["concert_id", "singer_id"],
            [("concert_id", "concert", "concert_id"), ("singer_id", "singer", "singer_id")],
            [(1, 2), (1, 3), (1, 5), (2, 3), (2, 6), (3, 5), (4, 4), (5, 6), (5, 7), (6, 3)],
        ),
    ],
    "university": [
        (
            "department",
            [
                ("dept_id", "INTEGER", "number"),
                ("dept_name", "TEXT", "text"),
                ("building", "TEXT", "text"),
                ("budget", "REAL", "number"),
            ],
            ["dept_id"],
            [],
            [
                (1, "Physics", "Watson", 70000.0),
                (2, "History", "Painter", 50000.0),
                (3, "Computer Science", "Taylor", 100000.0),
                (4, "Biology", "Watson", 90000.0),
                (5, "Music", "Packard", 80000.0),
            ],
        ),
        (
            "instructor",
            [
                ("instructor_id", "INTEGER", "number"),
                ("name", "TEXT", "text"),
                ("dept_id", "INTEGER", "number"),
                ("salary", "REAL", "number"),
            ],
            ["instructor_id"],
            [("dept_id", "department", "dept_id")],
            [
                (10, "Marta Kim", 3, 92000.0),
                (11, "Mario Rossi", 1, 87000.0),
                (12, "Ines Wu", 3, 75000.0),
                (13, "Omar Haddad", 2, 62000.0),
                (14, "Greta Lind", 4, 72000.0),
                (15, "Paul Einstein", 1, 95000.0),
                (16, "Mark Twine", 2, 58000.0),
            ],
        ),
        (
            "student",
            [
                ("student_id", "INTEGER", "number"),
                ("name", "TEXT", "text"),
                ("dept_id", "INTEGER", "number"),
                ("tot_cred", "INTEGER", "number"),
            ],
            ["student_id"],
            [("dept_id", "department", "dept_id")],
            [
                (100, "Zhang", 3, 102),
                (101, "Shankar", 3, 32),
                (102, "Brandt", 2, 80),
                (103, "Chavez", 1, 110),
                (104, "Peltier", 1, 56),
                (105, "Levy", 1, 46),
                (106, "Williams", 3, 54),
                (107, "Sanchez", 5, 38),
                (108, "Snow", 1, 0),
                (109, "Tanaka", 4, 120),
            ],
        ),
        (
            "course",
            [
                ("course_id", "TEXT", "text"),
                ("title", "TEXT", "text"),
                ("dept_id", "INTEGER", "number"),
                ("credits", "INTEGER", "number"),
            ],
            ["course_id"],
            [("dept_id", "department", "dept_id")],
            [
                ("CS-101", "Algorithms", 3, 4),
                ("CS-347", "Databases", 3, 3),
                ("PHY-101", "Quantum Mechanics", 1, 4),
                ("HIS-351", "World History", 2, 3),
                ("BIO-101", "Genetics", 4, 4),
                ("MU-199", "Music Theory", 5, 2),
            ],
        ),
        (
            "takes",
            [
                ("student_id", "INTEGER", "number"),
                ("course_id", "TEXT", "text"),
                ("grade", "TEXT", "text"),
            ],
            ["student_id", "course_id"],
            [("student_id", "student", "student_id"), ("course_id", "course", "course_id")],
            [
                (100, "CS-101", "A"),
                (100, "CS-347", "A"),
                (101, "CS-101", "B+"),
                (101, "CS-347", "B+"),
                (102, "HIS-351", "B"),
                (103, "PHY-101", "A"),
                (104, "PHY-101", "B+"),
                (105, "PHY-101", "C"),
                (106, "CS-347", "A"),
                (106, "CS-101", "B+"),
                (107, "MU-199", "A"),
                (109, "BIO-101", "B+"),
                (109, "CS-347", "C"),
            ],
        ),
    ],
    "deutsche_staedte": [
        (
            "Bundesländer",
            [
                ("Kürzel", "TEXT", "text"),
                ("Name", "TEXT", "text"),
                ("Hauptstadt", "TEXT", "text"),
            ],
            ["Kürzel"],
            [],
            [
                ("BY", "Bayern", "München"),
                ("NW", "Nordrhein-Westfalen", "Düsseldorf"),
                ("HH", "Hamburg", "Hamburg"),
                ("BW", "Baden-Württemberg", "Stuttgart"),
                ("SN", "Sachsen", "Dresden"),
            ],
        ),
        (
            "Städte",
            [
                ("Stadt_ID", "INTEGER", "number"),
                ("Name", "TEXT", "text"),
                ("Kürzel", "TEXT", "text"),
                ("Einwohner", "INTEGER", "number"),
                ("Bürgermeister", "TEXT", "text"),
                ("Fläche km2", "REAL", "number"),
            ],
            ["Stadt_ID"],
            [("Kürzel", "Bundesländer", "Kürzel")],
            [
                (1, "München", "BY", 1510000, "Petra Schäfer", 310.7),
                (2, "Nürnberg", "BY", 523000, "Jörg Weiß", 186.4),
                (3, "Augsburg", "BY", 301000, "Anna Bößl", 146.9),
                (4, "Köln", "NW", 1084000, "Uwe Görtz", 405.0),
                (5, "Düsseldorf", "NW", 629000, "Sabine Krüger", 217.4),
                (6, "Dortmund", "NW", 593000, "Hans Müller", 280.7),
                (7, "Münster", "NW", 320000, "Lea Brüning", 303.3),
                (8, "Hamburg", "HH", 1892000, "Olaf Jürgens", 755.2),
                (9, "Stuttgart", "BW", 633000, "Frank Nüßle", 207.4),
                (10, "Freiburg", "BW", 236000, "Eva Thür", 153.1),
            ],
        ),
        (
            "Sehenswürdigkeiten",
            [
                ("Ort_ID", "INTEGER", "number"),
                ("Bezeichnung", "TEXT", "text"),
                ("Stadt_ID", "INTEGER", "number"),
                ("Eintritt", "REAL", "number"),
                ("Jahr der Eröffnung", "INTEGER", "number"),
            ],
            ["Ort_ID"],
            [("Stadt_ID", "Städte", "Stadt_ID")],
            [
                (1, "Frauenkirche", 1, 0.0, 1494),
                (2, "Deutsches Museum", 1, 15.0, 1903),
                (3, "Kaiserburg", 2, 7.0, 1050),
                (4, "Kölner Dom", 4, 0.0, 1880),
                (5, "Miniatur Wunderland", 8, 20.0, 2001),
                (6, "Elbphilharmonie", 8, 0.0, 2017),
                (7, "Mercedes-Benz Museum", 9, 16.0, 2006),
                (8, "Fuggerei", 3, 6.5, 1521),
                (9, "Rheinturm", 5, 9.0, 1982),
                (10, "Englischer Garten", 1, 0.0, 1792),
            ],
        ),
    ],
}

# (db_id, question, gold SQL)
QUESTIONS: list[tuple[str, str, str]] = [
    ("music_festival", "How many singers do we have?", "SELECT count(*) FROM singer"),
    (
        "music_festival",
        "What are the names and ages of singers from France?",
        "SELECT name , age FROM singer WHERE country = 'France'",
    ),
    (
        "music_festival",
        "Which singers from France are older than the average age of singers from France?",
        "SELECT name FROM singer WHERE country = 'France' AND age > "
        "(SELECT avg(age) FROM singer WHERE country = 'France')",
    ),
    (
        "music_festival",
        "What is the home town of Liam O'Brien?",
        "SELECT \"Home Town\" FROM singer WHERE name = 'Liam O''Brien'",
    ),
    (
        "music_festival",
        "Show the name of each stadium and the number of concerts held there.",
        "SELECT T2.name , count(*) FROM concert AS T1 JOIN stadium AS T2 "
        "ON T1.stadium_id = T2.stadium_id GROUP BY T1.stadium_id",
    ),
    (
        "music_festival",
        "List the singer names and concert names of all concerts in 2014.",
        "SELECT T2.name , T3.concert_name FROM singer_in_concert AS T1 JOIN singer AS T2 "
        "ON T1.singer_id = T2.singer_id JOIN concert AS T3 ON T1.concert_id = T3.concert_id "
        "WHERE T3.year = 2014",
    ),
    (
        "music_festival",
        "Which stadium has the largest capacity?",
        "SELECT name FROM stadium ORDER BY capacity DESC LIMIT 1",
    ),
    (
        "music_festival",
        "What are the names of singers who have not performed in any concert?",
        "SELECT name FROM singer WHERE singer_id NOT IN (SELECT singer_id FROM singer_in_concert)",
    ),
    (
        "music_festival",
        "What are the distinct countries of singers older than 40?",
        "select DISTINCT Country from SINGER where Age > 40",
    ),
    (
        "music_festival",
        "How many concerts were held at the stadium in Glasgow?",
        "SELECT count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
        "WHERE T2.location = 'Glasgow'",
    ),
    (
        "music_festival",
        "Which countries have more than one singer?",
        "SELECT country FROM singer GROUP BY country HAVING count(*) > 1",
    ),
    (
        "music_festival",
        "List the names and years of concerts with the theme Summer Nights, ordered by year.",
        "SELECT concert_name , year FROM concert WHERE theme = 'Summer Nights' ORDER BY year",
    ),
    (
        "music_festival",
        "How many different singers performed in concerts at Stark's Park?",
        "SELECT count(DISTINCT T1.singer_id) FROM singer_in_concert AS T1 JOIN concert AS T2 "
        "ON T1.concert_id = T2.concert_id JOIN stadium AS T3 ON T2.stadium_id = T3.stadium_id "
        "WHERE T3.name = 'Stark''s Park'",
    ),
    (
        "university",
        "How many students are in the Physics department?",
        "SELECT count(*) FROM student AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id "
        "WHERE T2.dept_name = 'Physics'",
    ),
    (
        "university",
        "What is the average salary of instructors in each department?",
        "SELECT T2.dept_name , avg(T1.salary) FROM instructor AS T1 JOIN department AS T2 "
        "ON T1.dept_id = T2.dept_id GROUP BY T2.dept_name",
    ),
    (
        "university",
        "Find the names of instructors with a salary above 80000, highest salary first.",
        "SELECT name FROM instructor WHERE salary > 80000 ORDER BY salary DESC",
    ),
    (
        "university",
        "Which courses have 4 credits?",
        "SELECT title FROM course WHERE credits = 4",
    ),
    (
        "university",
        "What are the names of the students who took the course Databases?",
        "SELECT T1.name FROM student AS T1 JOIN takes AS T2 ON T1.student_id = T2.student_id "
        "JOIN course AS T3 ON T2.course_id = T3.course_id WHERE T3.title = 'Databases'",
    ),
    (
        "university",
        "Which department has the highest budget?",
        "SELECT dept_name FROM department ORDER BY budget DESC LIMIT 1",
    ),
    (
        "university",
        "Which students have more total credits than every student of the History department?",
        "SELECT name FROM student WHERE tot_cred > (SELECT max(T1.tot_cred) FROM student AS T1 "
        "JOIN department AS T2 ON T1.dept_id = T2.dept_id WHERE T2.dept_name = 'History')",
    ),
    (
        "university",
        "For each course title, how many students got the grade B+?",
        "SELECT T2.title , count(*) FROM takes AS T1 JOIN course AS T2 "
        "ON T1.course_id = T2.course_id WHERE T1.grade = 'B+' GROUP BY T2.title",
    ),
    (
        "university",
        "List the instructors whose name starts with Mar.",
        "SELECT name FROM instructor WHERE name LIKE 'Mar%'",
    ),
    (
        "university",
        "Which students do not take any course?",
        "SELECT name FROM student WHERE student_id NOT IN (SELECT student_id FROM takes)",
    ),
    (
        "university",
        "In which building is the Computer Science department?",
        "Select Building From DEPARTMENT Where Dept_Name = 'Computer Science'",
    ),
    (
        "university",
        "Which departments pay their instructors more on average than the average salary "
        "of all instructors?",
        "SELECT T2.dept_name FROM instructor AS T1 JOIN department AS T2 "
        "ON T1.dept_id = T2.dept_id GROUP BY T2.dept_name "
        "HAVING avg(T1.salary) > (SELECT avg(salary) FROM instructor)",
    ),
    (
        "deutsche_staedte",
        "Wie viele Städte liegen in Bayern?",
        "SELECT count(*) FROM Städte AS T1 JOIN Bundesländer AS T2 ON T1.Kürzel = T2.Kürzel "
        "WHERE T2.Name = 'Bayern'",
    ),
    (
        "deutsche_staedte",
        "Who is the Bürgermeister of München?",
        "SELECT Bürgermeister FROM Städte WHERE Name = 'München'",
    ),
    (
        "deutsche_staedte",
        "Which cities have an area (Fläche km2) of more than 300, largest first?",
        'SELECT Name FROM Städte WHERE "Fläche km2" > 300 ORDER BY "Fläche km2" DESC',
    ),
    (
        "deutsche_staedte",
        "Which Sehenswürdigkeiten opened before 1900, and in which city are they?",
        "SELECT T1.Bezeichnung , T2.Name FROM Sehenswürdigkeiten AS T1 JOIN Städte AS T2 "
        'ON T1.Stadt_ID = T2.Stadt_ID WHERE T1."Jahr der Eröffnung" < 1900',
    ),
    (
        "deutsche_staedte",
        "What is the total number of Einwohner per Bundesland, largest first?",
        "SELECT T2.Name , sum(T1.Einwohner) FROM Städte AS T1 JOIN Bundesländer AS T2 "
        "ON T1.Kürzel = T2.Kürzel GROUP BY T2.Name ORDER BY sum(T1.Einwohner) DESC",
    ),
    (
        "deutsche_staedte",
        "Which city has the most Sehenswürdigkeiten?",
        "SELECT T2.Name FROM Sehenswürdigkeiten AS T1 JOIN Städte AS T2 "
        "ON T1.Stadt_ID = T2.Stadt_ID GROUP BY T1.Stadt_ID ORDER BY count(*) DESC LIMIT 1",
    ),
    (
        "deutsche_staedte",
        "Welche Sehenswürdigkeiten haben keinen Eintritt (Eintritt 0)?",
        "SELECT Bezeichnung FROM Sehenswürdigkeiten WHERE Eintritt = 0",
    ),
    (
        "deutsche_staedte",
        "Who is the Bürgermeister of each city in Nordrhein-Westfalen with more than "
        "500000 Einwohner?",
        "SELECT T1.Bürgermeister FROM Städte AS T1 JOIN Bundesländer AS T2 "
        "ON T1.Kürzel = T2.Kürzel WHERE T2.Name = 'Nordrhein-Westfalen' AND T1.Einwohner > 500000",
    ),
]


def main() -> None:
    """Write every file of the sample dataset and check that each gold query runs."""
    rows = [
        {"question_id": i, "db_id": db, "question": q, "query": sql}
        for i, (db, q, sql) in enumerate(QUESTIONS, start=1)
    ]
    write_sample(
        DATABASES, HERE / "databases", HERE / "tables.json", HERE / "1_input.json", rows, "query"
    )


if __name__ == "__main__":
    main()
