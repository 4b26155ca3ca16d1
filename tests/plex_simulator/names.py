"""Word lists for generated titles and names (all invented; no real catalogue data)."""

from typing import Final

ADJECTIVES: Final = (
    "Silent", "Crimson", "Hidden", "Broken", "Golden", "Last", "Distant", "Electric", "Frozen",
    "Hollow", "Iron", "Lost", "Midnight", "Northern", "Pale", "Quiet", "Restless", "Scarlet",
    "Shattered", "Southern", "Burning", "Velvet", "Wild", "Wandering", "Endless", "Forgotten",
    "Glass", "Lonely", "Savage", "Secret", "Stolen", "Sunken", "Twisted", "Violet", "Winter",
    "Bright", "Dark", "Eternal", "Final", "First", "Grand", "Little", "Lucky", "Brave", "Cold",
)
NOUNS: Final = (
    "Harbor", "Storm", "Empire", "River", "Garden", "Machine", "Kingdom", "Signal", "Horizon",
    "Mirror", "Shadow", "Citadel", "Frontier", "Island", "Lantern", "Orchard", "Passage", "Reckoning",
    "Summit", "Tide", "Valley", "Voyage", "Witness", "Anthem", "Border", "Canyon", "Circuit",
    "Compass", "Covenant", "Desert", "Echo", "Engine", "Fortress", "Galaxy", "Heist", "Journey",
    "Labyrinth", "Legacy", "Meadow", "Monument", "Nightfall", "Outpost", "Paradox", "Prophecy",
    "Railway", "Rebellion", "Sanctuary", "Season", "Spiral", "Station", "Sunrise", "Theory",
    "Thunder", "Tower", "Treasure", "Vanguard", "Village", "Window", "Wolf", "Zero",
)
FIRST_NAMES: Final = (
    "Ada", "Bruno", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kira",
    "Luca", "Maya", "Nils", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
    "Wen", "Xavier", "Yara", "Zoltan", "Amélie", "Björn", "Chloé", "Søren", "Zoë", "José",
)
LAST_NAMES: Final = (
    "Abbott", "Barros", "Castell", "Dubois", "Eriksen", "Fontaine", "Garcia", "Hayes", "Ito",
    "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "O'Brien", "Petrov", "Quist", "Rossi",
    "Schmidt", "Tanaka", "Ulloa", "Varga", "Weber", "Xu", "Yilmaz", "Zimmer", "Núñez", "Müller",
)
GENRES_VIDEO: Final = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Family",
    "Fantasy", "History", "Horror", "Music", "Mystery", "Romance", "Science Fiction", "Thriller",
    "War", "Western",
)
GENRES_MUSIC: Final = (
    "Rock", "Pop", "Jazz", "Electronic", "Classical", "Hip-Hop", "Folk", "Metal", "Soul", "Blues",
    "Ambient", "Indie",
)
COUNTRIES: Final = (
    "United States of America", "United Kingdom", "France", "Germany", "Japan", "South Korea",
    "Canada", "Spain", "Italy", "Sweden",
)
STUDIOS: Final = (
    "Northwind Pictures", "Blue Harbor Films", "Crescent Studios", "Iron Gate Entertainment",
    "Paper Lantern", "Meridian Media", "Seventh Wave", "Halcyon Works",
)
NETWORKS: Final = ("NBX", "Channel 9", "StreamCo", "HBC", "Northwind TV", "Atlas One")
LABELS: Final = ("Night Owl Records", "Static Tapes", "Greyhound Music", "Paper Moon", "Lowlands")
CONTENT_RATINGS_MOVIE: Final = ("G", "PG", "PG-13", "R", "NR")
CONTENT_RATINGS_TV: Final = ("TV-Y", "TV-G", "TV-PG", "TV-14", "TV-MA")

# Real-world-style special cases: duplicates across years, leading articles, punctuation,
# non-ASCII, an ampersand (XML escaping) and titles with an original title.
SPECIAL_MOVIES: Final[tuple[tuple[str, int, str | None], ...]] = (
    ("Dune", 1984, None),
    ("Dune", 2021, None),
    ("The Matrix", 1999, None),
    ("A Quiet Place", 2018, None),
    ("Mission: Impossible", 1996, None),
    ("Ocean's Eleven", 2001, None),
    ("Tom & Jerry", 2021, None),
    ("Amélie", 2001, "Le Fabuleux Destin d'Amélie Poulain"),
    ("Little Women", 1994, None),
    ("Little Women", 2019, None),
    ("Crouching Tiger, Hidden Dragon", 2000, "臥虎藏龍"),
    ("Who Framed the Rabbit?", 1988, None),
    ("An American Tail", 1986, None),
    ("WALL·E", 2008, None),
)
SPECIAL_SHOWS: Final[tuple[tuple[str, int], ...]] = (
    ("The Office", 2005),
    ("The Office", 2001),
    ("Doctor Who", 2005),
    ("Law & Order", 1990),
    ("Shōgun", 2024),
)
SPECIAL_ARTISTS: Final[tuple[str, ...]] = ("The Velvet Echoes", "Sigur Rós Tribute", "AC/DC Covers")
