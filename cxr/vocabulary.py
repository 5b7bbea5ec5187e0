"""The observation vocabulary: CheXpert's 14 observations plus common extras, with their wording.

Each observation has `terms` (regular expressions over lower-case text whose match is a mention of
the observation itself) and, for the heart and mediastinum, `anatomy` terms that are a mention only
together with a qualifier ("heart size is enlarged" / "heart size is normal"). Extras name a
`parent` (an endotracheal tube is a support device, a nodule a lung lesion), so a finding of the
extra implies a finding of the parent.
"""

import re
import re._parser as _sre  # the standard library's own regex parser, to read required words
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

NO_FINDING: Final = "No Finding"
ENLARGED_CARDIOMEDIASTINUM: Final = "Enlarged Cardiomediastinum"
CARDIOMEGALY: Final = "Cardiomegaly"
LUNG_OPACITY: Final = "Lung Opacity"
LUNG_LESION: Final = "Lung Lesion"
EDEMA: Final = "Edema"
CONSOLIDATION: Final = "Consolidation"
PNEUMONIA: Final = "Pneumonia"
ATELECTASIS: Final = "Atelectasis"
PNEUMOTHORAX: Final = "Pneumothorax"
PLEURAL_EFFUSION: Final = "Pleural Effusion"
PLEURAL_OTHER: Final = "Pleural Other"
FRACTURE: Final = "Fracture"
SUPPORT_DEVICES: Final = "Support Devices"

# The 14 CheXpert observations, in CheXpert's order.
CHEXPERT: Final = (
    NO_FINDING,
    ENLARGED_CARDIOMEDIASTINUM,
    CARDIOMEGALY,
    LUNG_OPACITY,
    LUNG_LESION,
    EDEMA,
    CONSOLIDATION,
    PNEUMONIA,
    ATELECTASIS,
    PNEUMOTHORAX,
    PLEURAL_EFFUSION,
    PLEURAL_OTHER,
    FRACTURE,
    SUPPORT_DEVICES,
)

ENDOTRACHEAL_TUBE: Final = "Endotracheal Tube"
NASOGASTRIC_TUBE: Final = "Nasogastric Tube"
CENTRAL_LINE: Final = "Central Line"
PACEMAKER: Final = "Pacemaker"
CHEST_TUBE: Final = "Chest Tube"
RIB_FRACTURE: Final = "Rib Fracture"
CLAVICLE_FRACTURE: Final = "Clavicle Fracture"
HERNIA: Final = "Hernia"
EMPHYSEMA: Final = "Emphysema"
NODULE: Final = "Nodule"
MASS: Final = "Mass"

EXTRAS: Final = (
    ENDOTRACHEAL_TUBE,
    NASOGASTRIC_TUBE,
    CENTRAL_LINE,
    PACEMAKER,
    CHEST_TUBE,
    RIB_FRACTURE,
    CLAVICLE_FRACTURE,
    HERNIA,
    EMPHYSEMA,
    NODULE,
    MASS,
)


@dataclass(frozen=True)
class Observation:
    name: str
    terms: tuple[str, ...] = ()  # regexes: a match mentions the observation
    anatomy: tuple[str, ...] = ()  # regexes: a mention only with a qualifier nearby
    parent: str | None = None  # the broader observation a finding of this one implies
    # Whether a present or uncertain finding rules out "No Finding" (devices do not: CheXpert).
    abnormal: bool = True
    # Whether a past finding still shows on today's film ("old rib fractures"), so that "prior"
    # or "history of" before a mention does not dismiss it.
    lasting: bool = False
    pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    anatomy_pattern: re.Pattern[str] | None = field(
        init=False, repr=False, compare=False, default=None
    )
    # Words one of which every mention contains ("tube" for "chest tubes?"): a sentence with none
    # of them cannot mention the observation, so its patterns need not run. None: always run.
    keywords: frozenset[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        # Compiled once at import: the labeler runs these over every sentence of every report.
        if self.terms:
            object.__setattr__(self, "pattern", _compile(self.terms))
        if self.anatomy:
            object.__setattr__(self, "anatomy_pattern", _compile(self.anatomy))
        # Each term on its own: the parser factors prefixes shared by alternatives ("f" of
        # "fractur|fx"), which would leave only that prefix as a word to look for.
        hints = [required_substrings(term) for term in (*self.terms, *self.anatomy)]
        known = [hint for hint in hints if hint is not None]
        if known and len(known) == len(hints):
            object.__setattr__(self, "keywords", _minimal(frozenset[str]().union(*known)))


def _compile(alternatives: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")


def required_substrings(pattern: str) -> frozenset[str] | None:
    """Literal strings one of which every match of `pattern` contains, or None if none is known.

    Read from the pattern's parse tree: a run of literal characters must occur, an alternation
    needs one of its branches' strings, an optional part needs nothing. Of several choices along a
    sequence, the one whose shortest string is longest is kept (it rules out most text).

    >>> sorted(required_substrings(r"\b(?:chest tubes?|pleural (?:drain|tube)s?)\b"))
    ['chest tube', 'pleural ']
    """
    parsed = _sre.parse(pattern)
    if parsed.state.flags & re.IGNORECASE:
        return None  # the words are looked for in lower-cased text, as the patterns are written
    return _required(parsed)


def _minimal(words: frozenset[str]) -> frozenset[str]:
    """Drop words that contain another word of the set: finding the shorter one is enough."""
    return frozenset(w for w in words if not any(o != w and o in w for o in words))


def _required(sequence: Iterable[tuple[Any, Any]]) -> frozenset[str] | None:
    """Required strings of a parsed sequence; anything not understood requires nothing."""
    choices: list[frozenset[str]] = []
    run: list[str] = []
    for op, av in [*sequence, (None, None)]:
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        if run:
            choices.append(frozenset({"".join(run)}))
            run = []
        found: frozenset[str] | None = None
        if op is _sre.SUBPATTERN and not av[1] & re.IGNORECASE:  # av: group, flags on, off, body
            found = _required(av[3])
        elif op is _sre.BRANCH:
            branches = [_required(branch) for branch in av[1]]
            known = [branch for branch in branches if branch is not None]
            if len(known) == len(branches):
                found = frozenset[str]().union(*known)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] >= 1:  # av: min, max, body
            found = _required(av[2])
        if found:
            choices.append(found)
    if not choices:
        return None
    return max(choices, key=lambda c: (min(map(len, c)), -len(c)))


# Qualifiers for anatomy mentions, looked for a few words around "heart size", "mediastinum".
ENLARGED_QUALIFIER: Final = re.compile(
    r"\b(?:enlarge\w*|large|larger|widen\w*|wide|prominen\w*|increas\w*|big)\b"
)
BORDERLINE_QUALIFIER: Final = re.compile(
    r"\b(?:top[- ]normal|upper(?:[- ]limits?)?(?: of)?[- ]normal|high[- ]normal|borderline)\b"
)
NORMAL_QUALIFIER: Final = re.compile(
    r"\b(?:normal|within normal limits|unremarkable|not enlarged|no enlargement|"
    r"not widened|no widening|small|not (?:significantly )?enlarged)\b"
)

_DEVICE_WORDS: Final = (
    r"(?:endotracheal|et|ett|tracheostomy|trach|nasogastric|ng|orogastric|og|enteric|feeding|"
    r"dobhoff|chest|thoracostomy|pleural|mediastinal|pigtail|drainage|gastric|sengstaken)"
)

OBSERVATIONS: Final[dict[str, Observation]] = {
    o.name: o
    for o in (
        Observation(
            NO_FINDING,
            terms=(
                r"no acute (?:cardiopulmonary|intrathoracic|cardiothoracic|pulmonary)?\s*"
                r"(?:process|abnormalit(?:y|ies)|disease|findings?|pathology|change)",
                r"normal (?:chest|study|examination|radiograph)",
                r"no (?:radiographic )?evidence of (?:acute )?(?:cardiopulmonary )?disease",
            ),
            abnormal=False,
        ),
        Observation(
            ENLARGED_CARDIOMEDIASTINUM,
            terms=(
                r"(?:widen(?:ed|ing)|enlarged?|enlargement of the) (?:superior )?mediastin\w*",
                r"mediastinal (?:widening|enlargement|prominence)",
                r"enlarged cardiomediastinum",
                r"cardiomediastinal enlargement",
            ),
            anatomy=(
                r"(?:cardio)?mediastin(?:um|al)(?: (?:silhouette|contours?|width|configuration|"
                r"shadow|structures|borders?))?",
                r"cardiomediastinal(?: (?:silhouette|contours?|size|shadow))?",
                r"mediastinal and (?:hilar|cardiac) (?:contours?|silhouettes?)",
                r"(?:hilar|cardiac) and mediastinal (?:contours?|silhouettes?)",
                r"pericardial silhouette",
            ),
        ),
        Observation(
            CARDIOMEGALY,
            terms=(
                r"cardiomegaly",
                r"cardiac (?:enlargement|hypertrophy)",
                r"enlarge(?:d|ment of)(?: the)? (?:heart|cardiac (?:silhouette|size|shadow))",
                r"(?:enlarged|large|prominent|increased) cardiac"
                r" (?:silhouette|size|shadow|contour)",
            ),
            anatomy=(
                r"heart(?: size)?",
                r"cardiac (?:silhouette|size|shadow|contours?|borders?)",
                r"cardiac and mediastinal (?:contours?|silhouettes?)",
                r"size of the (?:heart|cardiac silhouette)",
            ),
        ),
        Observation(
            LUNG_OPACITY,
            terms=(
                r"opaci\w*",
                # Not "soft tissue density" or "high density material": those are not lung.
                r"(?<!soft tissue )(?<!high )(?<!bone )(?<!radiopaque )densit(?:y|ies)",
                r"infiltrat\w*",
                r"air[- ]?space (?:disease|process|filling)",
                r"hazy|haziness",
                r"ground[- ]glass",
                r"interstitial (?:marking|pattern|lung|abnormalit|opacit|prominence|thickening|"
                r"process|disease)\w*",
                r"reticula\w*",
                r"(?:parenchymal )?scar(?:ring|s)?",
                r"peribronchial (?:thickening|cuffing)",
                r"decreased translucency",
            ),
        ),
        Observation(
            LUNG_LESION,
            terms=(
                r"(?<!osseous )(?<!bony )(?<!bone )(?<!lytic )(?<!blastic )(?<!sclerotic )"
                r"(?<!skin )lesions?",
                r"nodular (?:densit|opacit|opacification)\w*",
                r"cavitary lesions?",
                r"carcinoma",
                r"neoplasm\w*",
                r"tumou?rs?",
                r"malignan\w*",
                r"metasta\w*",
                r"lump",
            ),
        ),
        Observation(
            EDEMA,
            terms=(
                r"edema",
                r"oedema",
                r"heart failure",
                r"chf",
                r"(?:pulmonary |central )?(?:vascular|venous) (?:congestion|engorgement|"
                r"prominence|redistribution|plethora)",
                r"pulmonary congestion",
                r"(?:perihilar |vascular )?indistinctness",
                r"cephalization",
                r"fluid overload",
                r"kerley",
            ),
        ),
        Observation(CONSOLIDATION, terms=(r"consolidat\w*",)),
        Observation(
            PNEUMONIA,
            terms=(r"pneumonias?", r"pneumonitis", r"infection", r"infectious(?: process)?"),
        ),
        Observation(
            ATELECTASIS,
            terms=(r"atelecta\w*", r"collapsed?", r"volume loss"),
        ),
        Observation(
            PNEUMOTHORAX,
            terms=(r"(?:hydro)?pneumothora(?:x|ces)", r"ptx"),
        ),
        Observation(
            PLEURAL_EFFUSION,
            terms=(
                r"(?<!pericardial )effusions?",
                r"pleural fluid",
                r"hydrothorax",
                r"hydropneumothorax",
                r"blunt(?:ed|ing)?(?: of)?(?: the)?(?: (?:left|right|bilateral))?"
                r" (?:costophrenic|cp) (?:angles?|sulcus|sulci)",
                r"fluid (?:in|within|tracking along) the (?:\w+ )?fissures?",
            ),
        ),
        Observation(
            PLEURAL_OTHER,
            terms=(
                r"pleural (?:thickening|scar\w*|plaques?|calcification)",
                r"fibrothorax",
                r"(?:pleuro-?|pleural )?parenchymal scar\w*",
                r"fibrosis",
                r"fibrotic",
                r"apical (?:pleural )?caps?",
            ),
            lasting=True,
        ),
        Observation(FRACTURE, terms=(r"fractur\w*", r"fx"), lasting=True),
        Observation(
            SUPPORT_DEVICES,
            terms=(
                r"tubes?",
                # Not the pleural line of a pneumothorax, nor Kerley, septal, interstitial
                # ("short horizontal lines" of edema) or fracture lines, nor the anatomical
                # reference lines ("mid-sternal line").
                r"(?<!pleural )(?<!septal )(?<!kerley b )(?<!kerley )(?<!fracture )(?<!sternal )"
                r"(?<!clavicular )(?<!axillary )(?<!horizontal )(?<!interstitial )lines?",
                r"(?:(?:pacing|epicardial|guide) |guide)wires?",  # not sternotomy wires
                r"catheters?",
                r"picc",
                r"pacer",
                r"pacing",
                r"valves?",
                r"valvular replacement",
                r"prosthe\w*",
                r"hardware",
                r"arthroplast\w*",
                r"icd",
                r"defibrillator",
                r"devices?",
                r"drains?",
                r"plates?",
                r"screws?",
                r"cannula",
                r"apparatus",
                r"coils?",
                r"stents?",
                r"port(?:-a-cath)?",
                r"mediport",
                r"leads?",
                r"swan[- ]ganz",
                r"ij",
                r"impella",
                r"lvad",
                r"balloon pump",
                r"iabp",
            ),
            abnormal=False,
        ),
        Observation(
            ENDOTRACHEAL_TUBE,
            terms=(
                r"endotracheal tube",
                r"et tube",
                r"ett",
                r"tracheostomy(?: tube)?",
                r"intubat\w*",
            ),
            parent=SUPPORT_DEVICES,
            abnormal=False,
        ),
        Observation(
            NASOGASTRIC_TUBE,
            terms=(
                r"(?:nasogastric|orogastric|ng|og|enteric|feeding|dobhoff|gastric) tubes?",
                r"dobhoff",
            ),
            parent=SUPPORT_DEVICES,
            abnormal=False,
        ),
        Observation(
            CENTRAL_LINE,
            terms=(
                r"central (?:venous )?(?:line|catheter)s?",
                r"picc(?: line)?",
                r"(?:ij|jugular|subclavian|femoral)(?: central)?(?: venous)? (?:line|catheter)s?",
                r"swan[- ]ganz(?: catheter)?",
                r"pulmonary artery catheter",
                r"(?:hemo)?dialysis catheter",
                r"port(?:-a-cath)?",
                r"mediport",
            ),
            parent=SUPPORT_DEVICES,
            abnormal=False,
        ),
        Observation(
            PACEMAKER,
            terms=(
                r"pacemaker",
                r"pacer",
                r"pacing (?:device|leads?|wires?)",
                r"icd",
                r"(?:cardioverter[- ])?defibrillator",
            ),
            parent=SUPPORT_DEVICES,
            abnormal=False,
        ),
        Observation(
            CHEST_TUBE,
            terms=(
                r"chest tubes?",
                r"thoracostomy tubes?",
                r"pleural (?:drain|catheter|tube)s?",
                r"pigtail(?: catheter)?",
            ),
            parent=SUPPORT_DEVICES,
            abnormal=False,
        ),
        Observation(
            RIB_FRACTURE,
            terms=(
                r"rib fractur\w*",
                r"fractur\w* of (?:the )?(?:\w+ )?(?:\w+ )?ribs?",
                r"fractured ribs?",
            ),
            parent=FRACTURE,
            lasting=True,
        ),
        Observation(
            CLAVICLE_FRACTURE,
            terms=(r"clavic\w* fractur\w*", r"fractur\w* of (?:the )?(?:\w+ )?clavicle"),
            parent=FRACTURE,
            lasting=True,
        ),
        Observation(HERNIA, terms=(r"hernia\w*",)),
        Observation(
            EMPHYSEMA, terms=(r"(?<!subcutaneous )(?<!soft tissue )emphysema\w*",), lasting=True
        ),
        Observation(NODULE, terms=(r"nodul\w*",), parent=LUNG_LESION),
        Observation(MASS, terms=(r"mass(?:es)?(?! effect)",), parent=LUNG_LESION),
    )
}


def canonical(name: str) -> str:
    """The canonical observation name for any spelling ("pleural effusion" -> "Pleural Effusion").

    Raises KeyError for a name outside the vocabulary.
    """
    key = " ".join(name.replace("_", " ").split()).lower()
    for observation in OBSERVATIONS:
        if observation.lower() == key:
            return observation
    raise KeyError(f"unknown observation: {name!r}")


def ancestors(name: str) -> list[str]:
    """The broader observations a finding of `name` implies, nearest first."""
    chain: list[str] = []
    parent = OBSERVATIONS[name].parent
    while parent is not None:
        chain.append(parent)
        parent = OBSERVATIONS[parent].parent
    return chain
