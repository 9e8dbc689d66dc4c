"""Implicit recall: an earlier remark (the cue) and a later one that depends on it but
shares almost no words with it (the trigger). Cues are stitched into LoCoMo
conversations as turns of their speakers; each trigger is one search in that
conversation's scope, and it is a hit when the cue is among the top 10.

"Since the flood I keep every document in the cloud" ... "my laptop died, but I lost
nothing": the lexical signal has little to go on (a word or two, usually common ones),
the dense one has the meaning. Fused search should be at least as good as the better
of the two here, as on LoCoMo's own questions.

Used by `locomo_retrieval.py --implicit` (same protocol, same leave-one-out); run alone,
this module prints the pairs and their shared content stems.
"""

from __future__ import annotations

import re
import sys
from copy import deepcopy
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hybridmem.text import content_stems  # noqa: E402

CATEGORY = 6
# (cue, trigger). Written for this benchmark; each trigger shares at most one content
# stem with its cue (checked by `shared_stems`, printed by running this module).
PAIRS: list[tuple[str, str]] = [
    ("Since the flood last spring I scan every paper document and keep it all in the cloud.",
     "My laptop died yesterday, but honestly I lost nothing."),
    ("I've been allergic to peanuts since I was a kid, it's pretty severe.",
     "The waiter swore the satay was safe, and I still asked him to check with the kitchen."),
    ("I finally got my pilot's license after two years of lessons.",
     "This weekend I flew my sister over the coast to see the lighthouse."),
    ("My doctor told me my blood sugar is too high, so I'm cutting out sweets.",
     "At the birthday party I skipped the cake and just had black coffee."),
    ("We adopted a rescue greyhound named Pepper last month.",
     "Had to buy a new couch cover, the old one got shredded by claws and muddy paws."),
    ("I sold my car because the bus line near my new flat is so good.",
     "Getting to the airport at 5am without wheels was quite an adventure."),
    ("I'm training for the Chicago marathon in October.",
     "My knees are killing me after that twenty-mile run on Sunday."),
    ("My grandmother passed away in March; she taught me to bake bread.",
     "I made her sourdough recipe today and cried a little while kneading."),
    ("I started learning Japanese because we're moving to Osaka next year.",
     "Today I managed to order ramen without pointing at the menu!"),
    ("I broke my wrist skateboarding, the cast stays on for six weeks.",
     "Typing with only my left hand is painfully slow."),
    ("I quit drinking alcohol at new year.",
     "At the wedding I toasted with sparkling water and still danced all night."),
    ("My daughter was diagnosed with celiac disease.",
     "I spent an hour in the store reading labels for wheat and gluten."),
    ("We installed solar panels on the roof in the summer.",
     "Our electricity bill this month was almost zero."),
    ("I'm afraid of heights, always have been.",
     "Everyone went up the glass observation tower, I stayed downstairs at the cafe."),
    ("I got a new job at a bakery that starts at four in the morning.",
     "I'm in bed by eight these days, my friends think I'm ninety."),
    ("I've been a vegetarian since college.",
     "At the barbecue I mostly ate grilled corn and salad."),
    ("My brother lives in New Zealand.",
     "Video calls with him mean one of us is always up at a weird hour."),
    ("I lost my passport on the train to Berlin.",
     "The embassy appointment is on Thursday, fingers crossed I can fly home."),
    ("I've been learning to play the cello for a year.",
     "The neighbours asked me to practise before nine, the low notes go through the wall."),
    ("We're expecting twins in the spring.",
     "We had to buy a bigger car to fit two baby seats."),
    ("I became a beekeeper this year, two hives in the backyard.",
     "I gave jars of honey to all the neighbours for the holidays."),
    ("My husband works night shifts at the hospital.",
     "I eat dinner alone most evenings and we leave notes on the fridge."),
    ("I'm colorblind, reds and greens look the same to me.",
     "Traffic lights are fine, I just remember the top one means stop."),
    ("I was laid off from the design agency in January.",
     "Money is tight so we're skipping the vacation this year."),
    ("I recently got hearing aids.",
     "At the concert I could finally make out the lyrics again."),
    ("I'm lactose intolerant.",
     "I asked for oat milk in my latte again today."),
    ("My apartment is on the fifth floor and the elevator has been broken for weeks.",
     "Carrying the groceries upstairs is my workout now."),
    ("I've been volunteering at the animal shelter on Saturdays.",
     "I came home covered in fur and smelling like kibble again."),
    ("I had laser eye surgery last month.",
     "I threw away all my glasses and contact lenses."),
    ("My landlord raised the rent by forty percent.",
     "We started looking at houses outside the city this weekend."),
    ("I'm running for the school board this autumn.",
     "I knocked on two hundred doors and shook a lot of hands."),
    ("I planted tomatoes, zucchini and peppers in raised beds.",
     "I haven't bought a single vegetable at the market since July."),
    ("My son joined the navy right after graduating.",
     "His ship docks in Norfolk next week, I'm driving down to meet him."),
    ("I was diagnosed with type 1 diabetes.",
     "I carry juice boxes and a glucose meter in my bag everywhere."),
    ("We bought an old farmhouse with a wood stove.",
     "I spent the whole Saturday splitting logs for winter."),
    ("I'm a night owl, I do my best painting after midnight.",
     "The early meetings at the new studio are brutal for me."),
    ("I got braces at thirty-five.",
     "Popcorn and caramel are off limits for the next eighteen months."),
    ("My wife is a firefighter.",
     "Every time I hear sirens I check my phone."),
    ("I moved to Alaska for a research post.",
     "The sun barely rises here in December, so I bought a light therapy lamp."),
    ("I signed up to foster kittens until they are old enough for adoption.",
     "There are tiny claw marks on every curtain in the house."),
    ("I tore my ACL playing soccer.",
     "Physical therapy twice a week, and crutches until the end of the month."),
    ("I'm saving up to buy a house, no eating out for a whole year.",
     "I packed leftovers for lunch every single day this week."),
    ("My father has early dementia.",
     "He asked me three times today what day it was, and called me by my uncle's name."),
    ("I switched to working remotely full-time.",
     "I haven't worn real shoes on a weekday in months."),
    ("The vet put our dog on a strict diet, he is overweight.",
     "He stares at me through every meal, begging with those sad eyes."),
    ("I learned to scuba dive in Thailand.",
     "We saw a turtle and a reef shark at forty feet down."),
    ("I got my motorcycle license.",
     "Bought a helmet and a leather jacket, taking the bike out on the coast road tomorrow."),
    ("We're renovating the kitchen, the contractor says three months.",
     "We've been living on takeout and a microwave in the living room."),
]


def shared_stems(cue: str, trigger: str) -> set[str]:
    """The content stems a trigger shares with its cue (what BM25 could match on)."""
    return set(content_stems(cue)) & set(content_stems(trigger))


def dia_id(i: int) -> str:
    """The evidence id of pair i's cue (never a LoCoMo id: those are D<session>:<turn>)."""
    return f"D{1000 + i}:1"


def stitch(samples: list[dict]) -> list[dict]:
    """Copies of the samples with the cues inserted and the triggers as questions.

    Pair i goes to conversation i mod n, into one of the first half of its sessions (the
    trigger is asked of the whole conversation, as a remark made later), in the middle of
    that session, said by the speaker the session's middle turn is by. Its question has
    category 6 and the cue as its only evidence.
    """
    out = deepcopy(samples)
    for i, (cue, trigger) in enumerate(PAIRS):
        sample = out[i % len(out)]
        conv = sample["conversation"]
        sessions = sorted(int(k.split("_")[1]) for k in conv
                          if re.fullmatch(r"session_\d+", k))
        early = sessions[: max(1, len(sessions) // 2)]
        session = early[(i // len(out)) % len(early)]
        turns = conv[f"session_{session}"]
        at = len(turns) // 2
        speaker = turns[at]["speaker"] if turns else conv["speaker_a"]
        turns.insert(at, {"speaker": speaker, "dia_id": dia_id(i), "text": cue})
        sample["qa"].append({"question": trigger, "answer": cue, "evidence": [dia_id(i)],
                             "category": CATEGORY})
    return out


if __name__ == "__main__":
    for n, (cue, trigger) in enumerate(PAIRS):
        print(f"{n:2d} shared={sorted(shared_stems(cue, trigger))}  {cue} -> {trigger}")
    print(f"{len(PAIRS)} pairs; with a shared stem: "
          f"{sum(1 for c, t in PAIRS if shared_stems(c, t))}")
