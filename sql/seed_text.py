"""Words for seeded text: names, places, job titles and a skewed vocabulary.

Full-text search is only realistic when word frequencies are: a few words ("engineer",
"team") appear in tens of thousands of jobs at scale 1, most in a handful. Descriptions draw
from a Zipf-weighted common vocabulary, and some carry one word from a long tail of made-up
words that each match a few jobs. Nothing here holds a tab, newline or backslash, so every
value goes into COPY's text format unescaped.
"""

from __future__ import annotations

import itertools
import random


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _split(
    "Ada Alan Grace Linus Margaret Barbara Ken Dennis Frances Edsger Donald Radia Leslie "
    "John Mary James Patricia Robert Jennifer Michael Linda William Elizabeth David Susan "
    "Richard Jessica Joseph Sarah Thomas Karen Charles Nancy Daniel Lisa Matthew Betty "
    "Anthony Sandra Mark Ashley Paul Kimberly Steven Emily Andrew Donna Kevin Michelle Brian "
    "Carol George Amanda Timothy Melissa Ronald Deborah Jason Stephanie Ryan Rebecca Jacob "
    "Laura Gary Sharon Nicholas Cynthia Eric Kathleen Amara Kwame Yuki Wei Priya Arjun Sofia "
    "Mateo Chloe Lucas Amina Omar Fatima Ivan Olga Noah Emma Liam Mia Ethan Zoe Aiden Nia")
LAST_NAMES = _split(
    "Lovelace Turing Hopper Torvalds Hamilton Liskov Thompson Ritchie Allen Dijkstra Knuth "
    "Perlman Lamport Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez "
    "Martinez Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee "
    "Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young King "
    "Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell "
    "Mitchell Carter Roberts Okafor Mensah Tanaka Chen Patel Singh Kowalski Novak Ivanova "
    "Silva Costa Rossi Muller Schmidt Dubois Larsen Berg Haddad Nakamura Kim Park")
# Skewed: the first places are far more common (the filter's selectivity varies a lot).
LOCATIONS = (
    "London", "Berlin", "New York", "Lagos", "Nassau", "Toronto", "Paris", "Madrid",
    "Amsterdam", "Dublin", "Lisbon", "Warsaw", "Prague", "Vienna", "Zurich", "Stockholm",
    "Oslo", "Helsinki", "Copenhagen", "Brussels", "Milan", "Rome", "Athens", "Istanbul",
    "Cairo", "Nairobi", "Accra", "Johannesburg", "Cape Town", "Dubai", "Mumbai", "Bangalore",
    "Delhi", "Singapore", "Tokyo", "Seoul", "Sydney", "Melbourne", "Auckland", "Sao Paulo",
    "Buenos Aires", "Santiago", "Lima", "Bogota", "Mexico City", "Austin", "Seattle",
    "Chicago", "Boston", "Denver", "Miami", "Atlanta", "Montreal", "Vancouver", "Kingston",
    "Manchester", "Edinburgh", "Hamburg", "Munich", "Lyon",
)
CATEGORIES = (
    "Engineering", "Healthcare", "Sales", "Education", "Finance", "Design", "Marketing",
    "Logistics", "Hospitality", "Construction", "Customer Support", "Legal", "Science",
    "Operations", "Human Resources", "Manufacturing", "Retail", "Media", "Government",
    "Agriculture", "Energy", "Security", "Real Estate", "Nonprofit", "Transport",
)
EMPLOYMENT_TYPES = ("full_time", "part_time", "contract", "internship", "temporary")
EMPLOYMENT_WEIGHTS = (70, 10, 12, 4, 4)
SENIORITY = ("", "Junior", "Senior", "Lead", "Principal", "Staff", "Head of", "Trainee")
SENIORITY_WEIGHTS = (40, 12, 22, 8, 3, 5, 4, 6)
FIELDS = (
    "Backend", "Frontend", "Data", "Cloud", "Mobile", "Security", "Clinical", "Marketing",
    "Finance", "Logistics", "Platform", "Product", "Research", "Sales", "Field", "Quality",
    "Network", "Embedded", "Machine Learning", "Customer", "Operations", "Payroll",
)
# The common search word: about a quarter of all titles name it.
ROLES = (
    "Engineer", "Developer", "Manager", "Nurse", "Designer", "Analyst", "Teacher", "Driver",
    "Accountant", "Consultant", "Technician", "Specialist", "Coordinator", "Assistant",
    "Cook", "Electrician", "Scientist", "Administrator", "Representative", "Architect",
)
ROLE_WEIGHTS = (25, 12, 10, 6, 5, 6, 4, 4, 3, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1, 0.5)
COMMON_SEARCH_WORD = "engineer"
SKILLS = (
    "python", "sql", "postgres", "redis", "aws", "kubernetes", "react", "typescript", "go",
    "rust", "java", "excel", "sales", "nursing", "teaching", "logistics", "design", "figma",
    "accounting", "leadership", "negotiation", "welding", "driving", "cooking", "statistics",
)
# Ordinary words, most frequent first; a Zipf weighting keeps the head very common.
COMMON_WORDS = _split(
    "team work our you will with experience engineer role join company customers build "
    "develop support skills people growth learning product data systems services years "
    "strong communication remote office benefits salary flexible hours training career "
    "projects quality design software manage responsible ensure clients deliver "
    "culture mission innovative fast growing startup global leading provider health care "
    "patients students school logistics warehouse drivers kitchen restaurant finance "
    "reporting analysis budget planning sales targets marketing campaigns brand content "
    "security network cloud infrastructure platform backend frontend mobile applications "
    "testing automation reliability performance scale users million api database python "
    "java javascript postgres kubernetes linux devops agile scrum stakeholders roadmap "
    "research science laboratory clinical compliance legal contracts operations process "
    "improvement inventory procurement suppliers construction site safety electrical "
    "maintenance repair equipment manufacturing production line shift weekend night "
    "bonus equity pension insurance vacation parental leave relocation visa sponsorship "
    "diverse inclusive equal opportunity employer apply today resume cover letter interview "
    "hiring manager onboarding mentoring coaching ownership impact collaborate curious "
    "detail oriented problem solving independent motivated passionate excellent written "
    "verbal english german french spanish degree bachelor master certification license "
    "driving hospitality guests hotel events travel retail store shop merchandise cashier "
    "accounting audit tax payroll invoices excel spreadsheets dashboards metrics insights "
    "machine learning models pipelines analytics visualization statistics experiments "
    "design figma prototypes user research accessibility interfaces components style"
)
SYLLABLES = _split(
    "ka zo ri ven tul mor qui lex dra pon sef yur bal nix tor gam fel wek cro vis jup hal "
    "bri sto lum pex gor tak fin dov rel sim ulk nar bex"
)


def rare_words(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct made-up words of three or four syllables (the long tail)."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < count:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def zipf_cumulative(count: int, exponent: float) -> list[float]:
    """Cumulative weights 1/(rank+1)^exponent for ranks 0..count-1 (for random.choices)."""
    return list(itertools.accumulate(1.0 / (rank + 1) ** exponent for rank in range(count)))


COMMON_CUMULATIVE = zipf_cumulative(len(COMMON_WORDS), 1.0)


class Sentences:
    """Word runs drawn in bulk from the Zipf vocabulary (one ``choices`` call per batch)."""

    BATCH = 50_000

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._words: list[str] = []

    def words(self, count: int) -> str:
        if len(self._words) < count:
            self._words.extend(self._rng.choices(COMMON_WORDS, cum_weights=COMMON_CUMULATIVE,
                                                 k=max(self.BATCH, count)))
        taken = self._words[-count:]
        del self._words[-count:]
        return " ".join(taken)
