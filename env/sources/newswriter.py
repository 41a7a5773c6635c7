"""Text for the synthetic market: company profiles and many-worded news, filing and macro templates.

Templates are data. Every event type has several headline and body wordings so a model cannot
learn a single phrase; numbers (EPS, %, price targets) come from the generator's hidden state,
so the text agrees with the prices. All choices go through the caller's ``numpy`` generator:
same draws, same text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class Event(StrEnum):
    """Kinds of synthetic news; the sign of each is fixed (see ``EVENT_SIGN``)."""

    EARNINGS_BEAT = "earnings_beat"
    EARNINGS_MISS = "earnings_miss"
    GUIDANCE_RAISE = "guidance_raise"
    GUIDANCE_CUT = "guidance_cut"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    PRODUCT_LAUNCH = "product_launch"
    CONTRACT_WIN = "contract_win"
    BUYBACK = "buyback"
    ACQUISITION_TARGET = "acquisition_target"
    RECALL = "recall"
    LAWSUIT = "lawsuit"
    PROBE = "probe"
    CEO_EXIT = "ceo_exit"
    CONFERENCE = "conference"
    ANNUAL_MEETING = "annual_meeting"
    CEO_SUCCESSION = "ceo_succession"
    ACQUIRER = "acquirer"
    PARTNERSHIP = "partnership"


EVENT_SIGN: dict[Event, int] = {
    Event.EARNINGS_BEAT: 1,
    Event.GUIDANCE_RAISE: 1,
    Event.UPGRADE: 1,
    Event.PRODUCT_LAUNCH: 1,
    Event.CONTRACT_WIN: 1,
    Event.BUYBACK: 1,
    Event.ACQUISITION_TARGET: 1,
    Event.EARNINGS_MISS: -1,
    Event.GUIDANCE_CUT: -1,
    Event.DOWNGRADE: -1,
    Event.RECALL: -1,
    Event.LAWSUIT: -1,
    Event.PROBE: -1,
    Event.CEO_EXIT: -1,
    Event.CONFERENCE: 0,
    Event.ANNUAL_MEETING: 0,
    Event.CEO_SUCCESSION: 0,
    Event.ACQUIRER: 0,
    Event.PARTNERSHIP: 0,
}

# Events drawn at random days (earnings come with the quarterly filings instead).
RANDOM_EVENTS: dict[int, tuple[Event, ...]] = {
    1: (Event.UPGRADE, Event.PRODUCT_LAUNCH, Event.CONTRACT_WIN, Event.BUYBACK, Event.ACQUISITION_TARGET, Event.GUIDANCE_RAISE),
    -1: (Event.DOWNGRADE, Event.RECALL, Event.LAWSUIT, Event.PROBE, Event.CEO_EXIT, Event.GUIDANCE_CUT),
    0: (Event.CONFERENCE, Event.ANNUAL_MEETING, Event.CEO_SUCCESSION, Event.ACQUIRER, Event.PARTNERSHIP),
}

PUBLISHERS = (
    "Reuters",
    "Bloomberg",
    "Dow Jones Newswires",
    "MarketWatch",
    "Barron's",
    "CNBC",
    "Financial Times",
    "The Wall Street Journal",
    "Associated Press",
    "Benzinga",
    "Investor's Business Daily",
)

BROKERS = (
    "Goldman Sachs", "Morgan Stanley", "JPMorgan", "Bank of America", "Citi", "Barclays", "UBS",
    "Jefferies", "Wells Fargo", "Bernstein", "Evercore ISI", "Piper Sandler", "Raymond James", "Deutsche Bank",
)
COURTS = (
    "the U.S. District Court for the Southern District of New York",
    "a Delaware Chancery Court",
    "the U.S. District Court in San Francisco",
    "a federal court in Texas",
    "the Northern District of Illinois",
)
AGENCIES = ("the Securities and Exchange Commission", "the Justice Department", "the Federal Trade Commission", "the European Commission")
CONFERENCES = (
    "the Morgan Stanley Technology, Media & Telecom Conference",
    "the Goldman Sachs Communacopia Conference",
    "the J.P. Morgan Healthcare Conference",
    "the Bernstein Strategic Decisions Conference",
    "the Barclays Global Financial Services Conference",
    "the UBS Global Industrials and Transportation Conference",
)
FIRST_NAMES = ("Laura", "David", "Priya", "Marcus", "Elena", "James", "Naomi", "Robert", "Mei", "Daniel", "Sofia", "Thomas")
LAST_NAMES = ("Hartley", "Okafor", "Lindqvist", "Moreno", "Chen", "Abernathy", "Kowalski", "Brennan", "Sato", "Whitfield")

SECTORS: dict[str, dict[str, tuple[str, ...]]] = {
    "technology": {
        "products": ("AI accelerator chip", "cloud security suite", "data-center switch", "developer platform", "edge computing module"),
        "customers": ("a major cloud provider", "the U.S. Department of Defense", "a large European telecom operator", "a global bank"),
        "recalls": ("overheating power adapters", "faulty battery packs", "defective server power supplies"),
        "risks": ("semiconductor supply constraints", "rapid technological change", "cybersecurity incidents", "export controls on advanced chips"),
    },
    "healthcare": {
        "products": ("glucose monitor", "oncology drug candidate", "surgical robot", "diagnostic test", "biosimilar"),
        "customers": ("a national hospital network", "the Department of Veterans Affairs", "a large pharmacy chain", "a European health system"),
        "recalls": ("infusion pumps", "a batch of contaminated vials", "mislabelled test kits"),
        "risks": ("clinical trial outcomes", "FDA approval timelines", "drug pricing legislation", "patent expirations"),
    },
    "energy": {
        "products": ("offshore wind project", "hydrogen electrolyser", "LNG terminal expansion", "battery storage system", "shale well program"),
        "customers": ("a Gulf Coast utility", "a European energy major", "a state power authority", "a Japanese trading house"),
        "recalls": ("faulty pipeline valves", "defective solar inverters", "gas meters"),
        "risks": ("commodity price volatility", "environmental regulation", "pipeline permitting", "extreme weather"),
    },
    "consumer": {
        "products": ("plant-based snack line", "premium running shoe", "smart kitchen appliance", "subscription service", "private-label range"),
        "customers": ("a nationwide retailer", "a leading grocery chain", "an online marketplace", "a hotel group"),
        "recalls": ("children's car seats", "contaminated frozen meals", "e-bike batteries"),
        "risks": ("shifting consumer preferences", "input cost inflation", "retail inventory levels", "brand reputation"),
    },
    "industrials": {
        "products": ("electric freight truck", "autonomous warehouse robot", "jet engine component", "smart grid transformer", "rail signalling system"),
        "customers": ("a major airline", "the U.S. Air Force", "a Class I railroad", "a global logistics firm"),
        "recalls": ("brake assemblies", "forklift hydraulic lines", "aircraft seat fittings"),
        "risks": ("supply chain disruption", "steel and aluminium prices", "labour availability", "government defense budgets"),
    },
    "financials": {
        "products": ("digital wealth platform", "small-business lending app", "real-time payments service", "crypto custody offering", "credit card"),
        "customers": ("a Fortune 100 retailer", "a state pension fund", "a regional bank consortium", "a large payroll processor"),
        "recalls": ("a faulty card-reader firmware release", "misprinted account statements", "an erroneous fee schedule"),
        "risks": ("interest rate changes", "credit losses", "capital requirements", "fraud and cyber attacks"),
    },
}

_KNOWN_COMPANIES = {
    "ACME": ("Acme Dynamics Inc.", "Acme", "industrials"),
    "BOLT": ("Bolt Semiconductor Corp.", "Bolt", "technology"),
    "CRUX": ("Crux Therapeutics Inc.", "Crux", "healthcare"),
    "DUNE": ("Dune Energy Partners Corp.", "Dune", "energy"),
    "EVER": ("Evergreen Brands Inc.", "Evergreen", "consumer"),
    "FORT": ("Fortis Financial Group Inc.", "Fortis", "financials"),
}
ACQUIRERS = (
    "Halvorsen Capital Partners", "Northgate Industries Corp.", "Vantage Global Holdings", "Sterling Ridge Group",
    "Altamont Technologies Inc.", "Bayview Equity Partners", "Crestline Corp.", "Meridian Worldwide Inc.",
)
_STEMS = ("Aster", "Beacon", "Cobalt", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Ion", "Juniper", "Keystone", "Lumen", "Meridian", "Nova", "Orion", "Pioneer", "Quarry", "Ridge", "Summit", "Titan")
_SUFFIX = {
    "technology": ("Systems Inc.", "Technologies Corp.", "Networks Inc."),
    "healthcare": ("Biosciences Inc.", "Medical Corp.", "Pharmaceuticals Inc."),
    "energy": ("Energy Corp.", "Resources Inc.", "Power Holdings Inc."),
    "consumer": ("Brands Inc.", "Foods Corp.", "Retail Group Inc."),
    "industrials": ("Industries Inc.", "Aerospace Corp.", "Machinery Co."),
    "financials": ("Financial Corp.", "Capital Group Inc.", "Bancorp Inc."),
}


@dataclass(frozen=True)
class Company:
    """A fictional issuer behind a synthetic ticker."""

    ticker: str
    name: str
    short: str
    sector: str
    ceo: str


def company_for(ticker: str) -> Company:
    """The fictional company of ``ticker``; a pure function of the ticker, so every run agrees."""
    h = int(hashlib.sha256(ticker.encode()).hexdigest(), 16)
    ceo = f"{FIRST_NAMES[h % len(FIRST_NAMES)]} {LAST_NAMES[(h // 7) % len(LAST_NAMES)]}"
    if ticker in _KNOWN_COMPANIES:
        name, short, sector = _KNOWN_COMPANIES[ticker]
    else:
        sector = tuple(SECTORS)[(h // 13) % len(SECTORS)]
        short = _STEMS[(h // 101) % len(_STEMS)]
        name = f"{short} {_SUFFIX[sector][(h // 997) % 3]}"
    return Company(ticker=ticker, name=name, short=short, sector=sector, ceo=ceo)


# -- news templates ------------------------------------------------------------------------
# Headlines and leads use {company} {short} {ticker} and event numbers; bodies end with a
# context sentence about the recent price move so text and prices agree.

HEADLINES: dict[Event, tuple[str, ...]] = {
    Event.EARNINGS_BEAT: (
        "{company} tops Wall Street estimates as {q} profit climbs",
        "{short} beats quarterly earnings forecasts on strong demand",
        "{short} {q} EPS of ${eps} beats consensus of ${eps_est}",
        "{company} posts better-than-expected {quarter} results",
        "{short} shares jump after earnings surprise to the upside",
        "{short} crushes profit expectations, revenue up {rev_growth}%",
        "Earnings beat: {short} reports adjusted EPS ${eps}, ahead of views",
        "{short}'s {quarter} results sail past analyst projections",
    ),
    Event.EARNINGS_MISS: (
        "{company} misses profit estimates as costs bite",
        "{short} falls short of quarterly earnings expectations",
        "{short} {q} EPS of ${eps} misses consensus of ${eps_est}",
        "{company} reports disappointing {quarter} results",
        "{short} shares slide after earnings come in below forecasts",
        "{short} profit trails Wall Street view; margins narrow",
        "Earnings miss: {short} posts adjusted EPS ${eps}, below estimates",
        "{short}'s {quarter} earnings underwhelm analysts",
    ),
    Event.GUIDANCE_RAISE: (
        "{company} raises full-year outlook",
        "{short} lifts {year} revenue forecast to ${guide_lo}-{guide_hi} billion",
        "{short} boosts annual guidance on robust order book",
        "{short} ups profit forecast, citing resilient demand",
        "{company} now sees higher {year} earnings",
        "{short} hikes sales outlook for the rest of the year",
    ),
    Event.GUIDANCE_CUT: (
        "{company} cuts full-year outlook",
        "{short} lowers {year} revenue forecast to ${guide_lo}-{guide_hi} billion",
        "{short} slashes annual guidance amid softer demand",
        "{short} trims profit forecast, warns of headwinds",
        "{company} now expects weaker {year} earnings",
        "{short} issues profit warning for the rest of the year",
    ),
    Event.UPGRADE: (
        "{broker} upgrades {short} to {rating_new}, sees {upside}% upside",
        "{short} upgraded to {rating_new} at {broker}",
        "{broker} turns bullish on {company}",
        "{short} gets an upgrade from {broker}; target raised to ${target}",
        "Analyst call: {broker} lifts {short} to {rating_new}",
        "{broker} says buy {short} as fundamentals improve",
    ),
    Event.DOWNGRADE: (
        "{broker} downgrades {short} to {rating_new}",
        "{short} cut to {rating_new} at {broker}; target lowered to ${target}",
        "{broker} turns cautious on {company}",
        "{short} downgraded by {broker} on valuation concerns",
        "Analyst call: {broker} lowers {short} to {rating_new}",
        "{broker} sees {downside}% downside in {short} shares",
    ),
    Event.PRODUCT_LAUNCH: (
        "{company} unveils new {product}",
        "{short} launches {product}, targeting a ${tam} billion market",
        "{short} rolls out next-generation {product}",
        "{short} debuts {product} ahead of schedule",
        "{company} introduces {product} to broad customer interest",
    ),
    Event.CONTRACT_WIN: (
        "{company} wins ${deal} million contract from {customer}",
        "{short} lands multi-year deal with {customer}",
        "{short} awarded ${deal} million order",
        "{customer} picks {short} in ${deal} million agreement",
        "{short} secures major supply contract",
    ),
    Event.BUYBACK: (
        "{company} announces ${buyback} billion share repurchase",
        "{short} authorizes new ${buyback} billion buyback",
        "{short} board approves stock buyback, raises dividend",
        "{short} to return ${buyback} billion to shareholders",
        "{company} expands share repurchase program",
    ),
    Event.ACQUISITION_TARGET: (
        "{acquirer} agrees to buy {company} for ${deal_bn} billion",
        "{short} to be acquired at a {premium}% premium",
        "{short} shares soar on takeover agreement",
        "{acquirer} makes ${per_share}-a-share offer for {short}",
        "{company} accepts buyout bid from {acquirer}",
    ),
    Event.RECALL: (
        "{company} recalls {units} units of {recall_item}",
        "{short} issues recall over {recall_item}",
        "Regulators push {short} to recall {recall_item}",
        "{short} faces costly recall of {recall_item}",
        "{company} pulls {recall_item} from market after safety complaints",
    ),
    Event.LAWSUIT: (
        "{company} hit with class action over disclosures",
        "{short} sued for ${claim} million in patent dispute",
        "Shareholders sue {short}, alleging misleading statements",
        "{short} loses court ruling in long-running lawsuit",
        "Jury orders {short} to pay ${claim} million in damages",
    ),
    Event.PROBE: (
        "{agency} opens probe into {company}",
        "{short} discloses investigation by {agency}",
        "{short} under scrutiny as {agency} requests documents",
        "{agency} widens inquiry into {short}'s accounting",
        "{short} shares fall on report of regulatory investigation",
    ),
    Event.CEO_EXIT: (
        "{company} CEO {ceo} resigns abruptly",
        "{short} chief executive steps down with immediate effect",
        "{short} ousts CEO {ceo} after board review",
        "Surprise exit: {short} CEO {ceo} departs; CFO named interim chief",
        "{short} shares drop as chief executive quits",
    ),
    Event.CONFERENCE: (
        "{company} to present at {conference}",
        "{short} management to speak at {conference}",
        "{short} CEO {ceo} to join fireside chat at {conference}",
        "{company} schedules investor presentation",
        "{short} to webcast conference appearance",
    ),
    Event.ANNUAL_MEETING: (
        "{company} shareholders re-elect board at annual meeting",
        "{short} announces date of annual general meeting",
        "{short} investors approve auditor, executive pay at AGM",
        "{company} files proxy statement ahead of annual meeting",
    ),
    Event.CEO_SUCCESSION: (
        "{company} names {new_ceo} as next CEO in planned succession",
        "{short} sets leadership transition; {ceo} to become executive chair",
        "{short} promotes {new_ceo} to chief executive, effective next quarter",
        "{company} announces orderly CEO succession",
    ),
    Event.ACQUIRER: (
        "{company} to acquire small {sector} startup for undisclosed sum",
        "{short} buys private software maker in bolt-on deal",
        "{short} completes acquisition of regional distributor",
        "{company} agrees to tuck-in acquisition",
    ),
    Event.PARTNERSHIP: (
        "{company} and {customer} announce strategic partnership",
        "{short} teams up with {customer} on pilot program",
        "{short} signs memorandum of understanding with {customer}",
        "{company} joins industry consortium on standards",
    ),
}

LEADS: dict[Event, tuple[str, ...]] = {
    Event.EARNINGS_BEAT: (
        "{company} ({ticker}) reported {quarter} adjusted earnings of ${eps} per share, above the ${eps_est} analysts had expected, on revenue of ${rev} billion.",
        "{short} said {quarter} profit rose as revenue climbed {rev_growth}% to ${rev} billion, beating the consensus estimate of ${eps_est} a share with ${eps}.",
        "Quarterly results from {company} came in ahead of forecasts: EPS of ${eps} versus ${eps_est} expected, a {surprise}% beat.",
    ),
    Event.EARNINGS_MISS: (
        "{company} ({ticker}) reported {quarter} adjusted earnings of ${eps} per share, short of the ${eps_est} analysts had expected, on revenue of ${rev} billion.",
        "{short} said {quarter} profit was squeezed by higher costs; EPS of ${eps} missed the consensus of ${eps_est} by {surprise}%.",
        "Quarterly results from {company} disappointed: revenue of ${rev} billion and EPS of ${eps} both trailed estimates.",
    ),
    Event.GUIDANCE_RAISE: (
        "{company} raised its {year} revenue forecast to ${guide_lo} billion to ${guide_hi} billion, citing stronger-than-expected demand.",
        "{short} now expects full-year sales of ${guide_lo}-{guide_hi} billion, up from its prior outlook, chief financial officer said on a call.",
    ),
    Event.GUIDANCE_CUT: (
        "{company} lowered its {year} revenue forecast to ${guide_lo} billion to ${guide_hi} billion, citing weaker orders and pricing pressure.",
        "{short} now expects full-year sales of ${guide_lo}-{guide_hi} billion, below its prior outlook, as customers delay purchases.",
    ),
    Event.UPGRADE: (
        "{broker} raised {company} ({ticker}) to {rating_new} from {rating_old} and lifted its price target to ${target} from ${old_target}.",
        "Analysts at {broker} upgraded {short} to {rating_new}, arguing the market underestimates its earnings power; their new target is ${target}.",
    ),
    Event.DOWNGRADE: (
        "{broker} cut {company} ({ticker}) to {rating_new} from {rating_old} and lowered its price target to ${target} from ${old_target}.",
        "Analysts at {broker} downgraded {short} to {rating_new}, warning that consensus estimates look too high; their new target is ${target}.",
    ),
    Event.PRODUCT_LAUNCH: (
        "{company} launched its {product}, which management expects to contribute meaningfully to revenue from next year.",
        "{short} unveiled the {product} at an event on {weekday}, saying early customer orders exceeded internal plans.",
    ),
    Event.CONTRACT_WIN: (
        "{company} said it won a ${deal} million, multi-year contract from {customer}, its largest order this year.",
        "{customer} selected {short} under a ${deal} million agreement, the company said in a statement.",
    ),
    Event.BUYBACK: (
        "{company}'s board authorized a ${buyback} billion share repurchase program, roughly {buyback_pct}% of its market value.",
        "{short} said it will buy back up to ${buyback} billion of stock, signalling confidence in its cash flow.",
    ),
    Event.ACQUISITION_TARGET: (
        "{acquirer} agreed to acquire {company} for ${per_share} a share in cash, a {premium}% premium to the last close, valuing it at ${deal_bn} billion.",
        "{company} said it accepted a ${deal_bn} billion takeover offer from {acquirer}; the deal is expected to close within six months.",
    ),
    Event.RECALL: (
        "{company} is recalling about {units} units of {recall_item} after reports of failures, a move that analysts estimate could cost ${claim} million.",
        "{short} said it would recall {recall_item}, following complaints filed with safety regulators.",
    ),
    Event.LAWSUIT: (
        "A suit filed in {court} accuses {company} of misleading investors and seeks ${claim} million in damages.",
        "{short} was ordered by {court} to pay ${claim} million, a ruling the company said it would appeal.",
    ),
    Event.PROBE: (
        "{company} disclosed that {agency} has opened an investigation into its sales practices and accounting.",
        "{agency} has asked {short} for documents related to revenue recognition, according to a regulatory filing.",
    ),
    Event.CEO_EXIT: (
        "{company} said chief executive {ceo} resigned, effective immediately, and named its finance chief interim CEO while it searches for a successor.",
        "{short}'s board removed CEO {ceo} following a review of the company's strategy, it said in a brief statement.",
    ),
    Event.CONFERENCE: (
        "{company} said members of its management team will present at {conference} on {weekday}; a webcast will be available on its investor relations site.",
        "Chief executive {ceo} of {short} will take part in a fireside chat at {conference}.",
    ),
    Event.ANNUAL_MEETING: (
        "Shareholders of {company} re-elected all directors and approved executive compensation on an advisory basis at the annual meeting.",
        "{short} set its annual general meeting for next month and published its proxy statement.",
    ),
    Event.CEO_SUCCESSION: (
        "{company} said {new_ceo} will succeed {ceo} as chief executive as part of a long-planned transition; {ceo} will become executive chair.",
        "{short} named {new_ceo}, currently chief operating officer, its next CEO.",
    ),
    Event.ACQUIRER: (
        "{company} agreed to buy a privately held {sector} company for an undisclosed amount; the deal is not expected to affect this year's results.",
        "{short} completed a small acquisition to broaden its product line, it said.",
    ),
    Event.PARTNERSHIP: (
        "{company} and {customer} announced a partnership to co-develop offerings; financial terms were not disclosed.",
        "{short} signed a non-binding agreement with {customer} to explore joint projects.",
    ),
}

_CONTEXT_UP = (
    "The stock had gained {move}% over the past month before the announcement.",
    "Shares were up {move}% over the previous 20 sessions.",
    "{short} shares have risen {move}% in the last month.",
)
_CONTEXT_DOWN = (
    "The stock had lost {move}% over the past month before the announcement.",
    "Shares were down {move}% over the previous 20 sessions.",
    "{short} shares have fallen {move}% in the last month.",
)
_CLOSERS: dict[int, tuple[str, ...]] = {
    1: (
        "Analysts said the news could prompt upward revisions to estimates.",
        "Investors welcomed the update, according to traders.",
        "The company did not comment further.",
    ),
    -1: (
        "Analysts said estimates may need to come down.",
        "Some investors questioned management's execution, traders said.",
        "A company spokesperson declined to comment further.",
    ),
    0: (
        "The company did not provide updated financial guidance.",
        "No financial terms were disclosed.",
        "The announcement was largely expected, analysts said.",
    ),
}
_RATINGS = {1: ("Buy", "Outperform", "Overweight"), -1: ("Sell", "Underperform", "Underweight", "Neutral")}
_PRIOR_RATINGS = {1: ("Neutral", "Hold", "Equal Weight"), -1: ("Buy", "Outperform", "Overweight")}
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


class _Picker:
    """Draws uniforms from ``rng`` in one batch (a numpy call per choice is slow) and picks with them."""

    def __init__(self, rng: np.random.Generator, size: int = 48) -> None:
        self._u = rng.random(size).tolist()
        self._i = 0

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        value = self._u[self._i % len(self._u)]
        self._i += 1
        return lo + (hi - lo) * value

    def __call__(self, options: tuple[str, ...]) -> str:
        return options[min(int(self.uniform() * len(options)), len(options) - 1)]


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def slug(text: str, words: int = 8) -> str:
    """URL slug of a headline: lower case, ascii words joined by hyphens."""
    return "-".join(re.findall(r"[a-z0-9]+", text.lower())[:words])


class _LazyValues(dict):
    """Template values computed (and memoised) on first lookup by ``str.format_map``."""

    def __init__(self, factories: dict[str, Callable[[], object]]) -> None:
        super().__init__()
        self._factories = factories

    def __missing__(self, key: str) -> object:
        value = self._factories[key]()
        self[key] = value
        return value


@dataclass(frozen=True)
class NewsText:
    """A rendered article."""

    headline: str
    body: str
    publisher: str


def render_news(
    rng: np.random.Generator,
    event: Event,
    company: Company,
    *,
    strength: float,
    price: float,
    past_move: float | None,
    year: int,
    quarter: int,
    eps: float | None = None,
    eps_est: float | None = None,
    revenue_bn: float | None = None,
) -> NewsText:
    """Write one article about ``event``. ``strength`` in (0, 1] scales the numbers (bigger beat, bigger premium)."""
    sign = EVENT_SIGN[event]
    pick = _Picker(rng)
    sector = SECTORS[company.sector]
    surprise = round(3 + 17 * strength * float(pick.uniform(0.6, 1.0)), 1)
    if eps is None:
        eps = round(float(pick.uniform(0.4, 3.5)), 2)
    if eps_est is None:
        eps_est = round(eps / (1 + sign * surprise / 100), 2) if sign else eps
    rev = revenue_bn if revenue_bn is not None else float(pick.uniform(0.8, 12.0))
    guide_mid = rev * 4 * (1 + sign * 0.05 * strength)
    target_move = 0.08 + 0.25 * strength
    target = price * (1 + target_move) if sign >= 0 else price * (1 - target_move)
    premium = round(18 + 40 * strength)
    # Values are computed on first use, so an article only draws the numbers its templates quote.
    factories: dict[str, Callable[[], object]] = {
        "company": lambda: company.name,
        "short": lambda: company.short,
        "ticker": lambda: company.ticker,
        "ceo": lambda: company.ceo,
        "new_ceo": lambda: f"{pick(FIRST_NAMES)} {pick(LAST_NAMES)}",
        "sector": lambda: company.sector,
        "q": lambda: f"Q{quarter}",
        "quarter": lambda: ("first-quarter", "second-quarter", "third-quarter", "fourth-quarter")[quarter - 1],
        "year": lambda: year,
        "eps": lambda: f"{eps:.2f}",
        "eps_est": lambda: f"{eps_est:.2f}",
        "surprise": lambda: f"{abs(eps / eps_est - 1) * 100 if eps_est else surprise:.1f}",
        "rev": lambda: f"{rev:.2f}",
        "rev_growth": lambda: f"{abs(pick.uniform(2, 10)) + 2 * strength:.1f}",
        "guide_lo": lambda: f"{guide_mid * 0.98:.1f}",
        "guide_hi": lambda: f"{guide_mid * 1.02:.1f}",
        "broker": lambda: pick(BROKERS),
        "rating_new": lambda: pick(_RATINGS.get(sign, ("Neutral",))),
        "rating_old": lambda: pick(_PRIOR_RATINGS.get(sign, ("Neutral",))),
        "target": lambda: f"{target:.0f}",
        "old_target": lambda: f"{price:.0f}",
        "upside": lambda: f"{target_move * 100:.0f}",
        "downside": lambda: f"{target_move * 100:.0f}",
        "product": lambda: pick(sector["products"]),
        "tam": lambda: f"{float(pick.uniform(5, 80)):.0f}",
        "customer": lambda: pick(sector["customers"]),
        "deal": lambda: f"{float(pick.uniform(80, 900)) * (0.5 + strength):.0f}",
        "buyback": lambda: f"{float(pick.uniform(0.5, 5.0)) * (0.5 + strength):.1f}",
        "buyback_pct": lambda: f"{3 + 7 * strength:.0f}",
        "acquirer": lambda: pick(ACQUIRERS),
        "premium": lambda: premium,
        "per_share": lambda: f"{price * (1 + premium / 100):.2f}",
        "deal_bn": lambda: f"{float(pick.uniform(4, 60)):.1f}",
        "units": lambda: f"{int(pick.uniform(20, 900)) * 1000:,}",
        "recall_item": lambda: pick(sector["recalls"]),
        "claim": lambda: f"{float(pick.uniform(20, 600)) * (0.5 + strength):.0f}",
        "court": lambda: pick(COURTS),
        "agency": lambda: pick(AGENCIES),
        "conference": lambda: pick(CONFERENCES),
        "weekday": lambda: pick(_WEEKDAYS),
        "move": lambda: f"{abs(past_move or 0.0) * 100:.1f}",
    }
    values = _LazyValues(factories)
    headline = pick(HEADLINES[event]).format_map(values)
    headline = headline[0].upper() + headline[1:]
    parts = [pick(LEADS[event])]
    if past_move is not None:
        parts.append(pick(_CONTEXT_UP if past_move >= 0 else _CONTEXT_DOWN))
    parts.append(pick(_CLOSERS[sign]))
    body = " ".join(parts).format_map(values)
    # Company announcements come over a press-release wire; everything else from a newsroom.
    publisher = "Business Wire" if event in (Event.BUYBACK, Event.CONFERENCE, Event.ANNUAL_MEETING) else pick(PUBLISHERS)
    return NewsText(headline=headline, body=body, publisher=publisher)


# -- filings -------------------------------------------------------------------------------

_MDA_REVENUE = (
    "Net revenue for the {period_word} was ${rev:.1f} million, {dir_word} {growth_abs:.1f}% compared with ${rev_prev:.1f} million in the prior-year period, driven primarily by {driver}.",
    "Total revenue {dir_verb} {growth_abs:.1f}% year over year to ${rev:.1f} million for the {period_word}, reflecting {driver}.",
)
_MDA_MARGIN = (
    "Gross margin was {margin:.1f}% compared with {margin_prev:.1f}% a year earlier, as {margin_reason}.",
    "Operating income was ${op_inc:.1f} million, or {op_margin:.1f}% of revenue, versus {op_margin_prev:.1f}% in the prior-year period.",
)
_MDA_EPS = (
    "Diluted earnings per share were ${eps:.2f}, compared with ${eps_prev:.2f} in the comparable period.",
    "Net income was ${net_inc:.1f} million, or ${eps:.2f} per diluted share.",
)
_MDA_LIQ = (
    "As of {period_end}, we had cash and cash equivalents of ${cash:.1f} million and ${debt:.1f} million of long-term debt outstanding. We believe our existing cash and cash flows from operations will be sufficient to meet our needs for at least the next twelve months.",
    "Cash provided by operating activities was ${ocf:.1f} million for the {period_word}. As of {period_end}, cash and equivalents totaled ${cash:.1f} million.",
)
_DRIVERS = {
    1: ("higher unit volumes and favourable pricing", "strong demand across our core segments", "new customer wins and expansion of existing accounts"),
    -1: ("lower unit volumes and pricing pressure", "softer demand in our core segments", "customer order delays and inventory destocking"),
}
_MARGIN_REASONS = {
    1: ("a favourable product mix and manufacturing efficiencies offset input cost inflation", "operating leverage on higher volumes improved profitability"),
    -1: ("higher input and freight costs and under-absorption of fixed costs weighed on profitability", "unfavourable mix and promotional activity compressed margins"),
}
_RISK_INTRO = (
    "Our business is subject to numerous risks. You should carefully consider the risks described below, together with the other information in this report.",
    "Investing in our securities involves a high degree of risk. The following risk factors could materially affect our business, financial condition and results of operations.",
)
_RISK_BODIES = (
    "We are exposed to {risk}, which could adversely affect our revenue and margins.",
    "Changes in {risk} may reduce demand for our products or increase our costs.",
    "If we fail to manage {risk} effectively, our results of operations could suffer.",
    "{risk_cap} has affected and may continue to affect our business in ways we cannot predict.",
)
_RISK_MACRO = {
    "bull": "Although demand has been strong recently, a reversal in economic conditions could reduce customer spending.",
    "bear": "Recent weakness in our end markets and tighter financial conditions have increased uncertainty about near-term demand.",
    "sideways": "Economic conditions remain mixed, and customer spending could weaken if growth slows.",
}


def render_mda(rng: np.random.Generator, sign: int, numbers: dict[str, float | str]) -> str:
    """Management's discussion and analysis with the quarter's numbers."""
    values = dict(numbers)
    values["driver"] = _pick(rng, _DRIVERS[sign])
    values["margin_reason"] = _pick(rng, _MARGIN_REASONS[sign])
    parts = [_pick(rng, _MDA_REVENUE), _pick(rng, _MDA_MARGIN), _pick(rng, _MDA_EPS), _pick(rng, _MDA_LIQ)]
    return " ".join(parts).format(**values)


def render_risk_factors(rng: np.random.Generator, company: Company, regime: str) -> str:
    """Item 1A: an introduction, three sector risks and one sentence reflecting the hidden regime."""
    risks = list(SECTORS[company.sector]["risks"])
    order = rng.permutation(len(risks))[:3]
    lines = [_pick(rng, _RISK_INTRO)]
    for i in order:
        risk = risks[int(i)]
        lines.append(_pick(rng, _RISK_BODIES).format(risk=risk, risk_cap=risk[0].upper() + risk[1:]))
    lines.append(_RISK_MACRO[regime])
    return " ".join(lines)
