"""Trigger vocabulary of the findings labeler: negation, uncertainty, clause ends and places.

Patterns run over lower-case sentences. Kept apart from `cxr.labeler` so that the wording can
grow without hiding the algorithm.
"""

import re
from typing import Final


def _triggers(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")


# "no change in the effusion" describes an effusion: these phrases negate nothing.
PSEUDO: Final = _triggers(
    r"no (?:significant |appreciable |substantial |definite |major |notable |interval |"
    r"significant interval |other )?(?:change|increase|decrease|improvement|worsening|"
    # "no enlargement of the heart" negates cardiomegaly itself, not a change.
    r"progression|enlargement(?! of (?:the )?(?:heart|cardiac|(?:cardio)?mediastin))|"
    r"difference|shift)",
    r"not (?:significantly |substantially |appreciably |much )?(?:changed|increased|"
    r"decreased|improved|worsened|different)",
    r"without (?:significant |interval |appreciable )?(?:change|interval change)",
    r"not only",
    r"no doubt",
    r"not well (?:seen|visualized|evaluated|assessed)",
    r"gram[- ]negative",
)
# Double negation: "cannot exclude", "is not ruled out" leave the question open.
DOUBLE_NEGATION: Final = _triggers(
    r"(?:cannot|can ?not|can't|could not|couldn't|may not|difficult to|unable to)"
    r"(?: be)?(?: entirely| completely| definitely| totally| fully)?"
    r" (?:exclude[sd]?|rule[sd]? out|ruled out)",
    r"(?:is|are|was|were|be)? ?not (?:entirely |completely |definitely |totally )?"
    r"(?:excluded|ruled out)",
    # CheXpert reads "XXX are not clearly seen" as uncertain; "not clearly present" alike.
    r"(?:not|(?:is|are|was|were)n['’]t) (?:clearly|definitely|confidently|definitively) "
    r"(?:seen|visuali[sz]ed|identified|excluded|present|evident|visible|apparent|demonstrated)",
)
PRE_NEGATION: Final = _triggers(
    r"no",
    r"not",
    r"without",
    r"negative for",
    r"absen(?:t|ce of)",
    r"free of",
    r"clear of",
    r"(?:interval )?resolution of",
    r"(?:interval )?removal of",
    r"resolved",
    r"removed",
    r"rather than",
    r"none",
    r"nor",
    r"neither",
    r"(?:is|are|was|were|does|do|did|has|have|had)n['’]t",  # "there isn't a pneumothorax"
    # "rules out pneumothorax", "which rule out X" deny; "to rule out X" and a leading "rule out
    # X" ask what to look for, and are uncertain (below) as an indication would be.
    r"rul(?:es|ed|ing) out",
    r"(?<!\bto )(?<=\w )rule out",
    r"lack(?:s|ing)?(?: of)?",
    r"exclud(?:es|ing)",
)
POST_NEGATION: Final = _triggers(
    r"(?:(?:is|are|was|were|has been|have been)? ?(?:not|no longer)|(?:is|are|was|were)n['’]t|"
    r"(?:has|have)n['’]t been) (?:been )?(?:seen|identified|"
    r"visuali[sz]ed|appreciated|present|evident|demonstrated|noted|detected|visible|apparent|"
    r"observed|shown|there|diagnosed|confirmed|found|indicated|supported)",
    r"(?:does|do|did)(?: not|n['’]t) (?:appear|seem)(?: to be)? (?:present|there|seen|visible|"
    r"evident|apparent)",
    r"(?:has|have|had)? ?(?:nearly |almost |completely |since )?(?:resolved|cleared|disappeared)",
    r"(?:has|have) been (?:removed|withdrawn|discontinued)",
    r"(?:is|are|was|were) (?:now )?(?:absent|gone|removed)",
    r"removed",
    r"ruled out",
)
PRE_UNCERTAINTY: Final = _triggers(
    r"may",
    r"might",
    r"could",
    r"possib(?:le|ly|ility of)",
    r"probabl[ey]",
    r"presum(?:ed|ably|ptive)",
    r"suspect(?:ed)?",
    r"suspicio(?:n|us) (?:of|for)",
    r"concern(?:ing)? (?:for|of)",
    r"worrisome (?:for|of)",
    r"question(?:able|ed)?(?: of)?",
    r"suggest(?:s|ed|ing|ive of|ion of)?",
    r"differential(?: diagnosis)?(?: includes?| considerations? includes?)?",
    r"consider(?:ed|ation of)?",
    r"(?:to )?(?:evaluate|assess|eval) for",
    r"(?:to )?rule out",
    r"r/o",
    r"equivocal",
    r"indeterminate",
    r"uncertain",
    r"atypical",
    r"raises? (?:the )?(?:concern|possibility|question) (?:of|for)",
    r"correlat(?:e|ion) (?:clinically )?for",
    r"versus",
    r"vs\.?",
)
POST_UNCERTAINTY: Final = _triggers(
    r"(?:is|are|was|were)? ?(?:also )?(?:possible|possibly present|suspected|questioned|"
    r"questionable|favou?red|considered|a consideration|a possibility|uncertain|equivocal|"
    r"not excluded|suggested)",
    r"(?:may|might|could|can) (?:also )?(?:be|not be) (?:present|seen|noted|identified|there|"
    r"developing|considered)",
    r"versus",
    r"vs\.?",
)
# A finding named as a heading and answered: "pleural effusion: none", "**pneumothorax**: absent",
# "effusion or pneumothorax: not seen". Used with match() right after the mention.
_ANSWER: Final = r"(?:(?:,|/| and| or)(?: [a-z]+){1,4})*[\s*_]*(?:\([^)]*\)[\s*_]*)?[:\-–][\s*_]*"
ANSWER_NEGATION: Final = re.compile(
    _ANSWER + r"(?:(?:there (?:is|are|was|were) )?(?:no|not|none|without)|absent|nil|negative)\b"
    # "effusion: no significant change" is a pseudo-negation, as in a sentence.
    r"(?! (?:\w+ )?(?:chang|increas|decreas|improv|worsen|progress|differ|shift|enlarg))"
)
ANSWER_UNCERTAINTY: Final = re.compile(
    _ANSWER + r"(?:possible|possibly|uncertain|equivocal|indeterminate|questionable|suspected|"
    r"probable|cannot be (?:excluded|ruled out)|not (?:excluded|ruled out))\b"
)
# A question mark after a finding ("pneumonia?") questions it; no word boundary after it.
QUESTION_MARK: Final = re.compile(r"\?")
# "A or B" leaves both open, but only as a direct alternative, not "tip in the SVC or atrium".
OR_BEFORE: Final = re.compile(r"\bor (?:\w+ ){0,2}$")
OR_AFTER: Final = re.compile(r",? (?:\w+ ){0,1}or\b")  # used with match(): anchored
# A clause ends at these: negation or uncertainty does not carry across them.
TERMINATOR: Final = re.compile(
    r"\b(?:but|however|although|though|except(?: for)?|aside from|apart from|otherwise|which|"
    r"whereas|while|yet|with the exception of|there (?:is|are)|and (?:there|the|a)|"
    r"and (?:interval |new )?(?:placement|insertion|replacement))\b|[;:]| - "
)
# After a comma, these words start a new statement rather than continue a list, so they end the
# reach of a "no" before the comma: "no effusion, small pneumothorax" vs "no effusion, pneumothorax
# or consolidation".
COMMA_BREAK: Final = re.compile(
    r",[^,]*\b(?:small|moderate|large|mild|severe|trace|minimal|tiny|new|persistent|stable|"
    r"unchanged|increas\w*|decreas\w*|improv\w*|worsen\w*|there|the|a|an|is|are|was|were|with|"
    r"has|have|seen|noted|present|likely|probable|possible|may)\b"
)

# "scarring from prior pneumonia" says nothing about pneumonia on this film: such mentions are
# skipped. One word may stand between ("prior left pneumothorax"), but not "prior study".
HISTORICAL: Final = re.compile(
    r"\b(?:history of|h/o|prior|previous|remote)\s+"
    r"(?:(?!(?:study|exam|examination|radiographs?|films?|images?|ct)\b)[\w-]+\s+)?$"
)
ITEM_END: Final = re.compile(r",| with | and (?!right|left)")
LATERALITY: Final = re.compile(
    r"\b(?:(left|right|bilateral(?:ly)?|both|bibasi(?:lar|al)|biapical)(?:[- ]sided)?)\b"
)
LOCATION: Final = re.compile(
    r"\b(?:(?:upper|middle|lower|mid) (?:lobes?|lung(?: zones?| fields?)?|zones?)|lingula\w*|"
    r"bases?|basilar|basal|bibasilar|apex|apices|apical|retrocardiac|perihilar|hilar|"
    r"infrahilar|suprahilar|costophrenic (?:angles?|sulcus)|mid lungs?|lung bases?|"
    r"subpulmonic|fissure|lateral chest wall|chest wall)\b"
)
# How many characters either side of a mention count as "near" for qualifiers and laterality.
NEAR_BEFORE: Final = 40
NEAR_AFTER: Final = 30
QUALIFIER_BEFORE: Final = 15  # "enlarged heart", "normal heart size": the qualifier leads closely
POST_REACH: Final = 60
# Post-uncertainty must follow its mention closely ("effusion is possible"), or it attaches to
# whatever else the clause names ("opacity, which may represent pneumonia").
POST_UNCERTAINTY_REACH: Final = 40
