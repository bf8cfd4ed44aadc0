"""Writes vl_metrics_golden.json for tests/vl_metrics.rs: VQA accuracies and COCO caption metrics.

Pinned: python 3.11.7, pycocoevalcap==1.2 with numpy==2.4.6 (pycocotools==2.0.11 comes with it, unused).
Run:
    python3 -m venv /tmp/vlvenv && /tmp/vlvenv/bin/pip install pycocoevalcap==1.2 numpy==2.4.6
    /tmp/vlvenv/bin/python crates/dept-data/tests/reference/vl_metrics_reference.py

Captions: the scores are pycocoevalcap's own `Bleu(4)`, `Rouge()` and `Cider()` (`compute_score`, corpus and per
image) on captions that are already tokenised (lower case, no punctuation, single spaces). `COCOEvalCap` would
first run `PTBTokenizer`, a Java program; it is skipped here as in the Rust code. METEOR and SPICE (Java) are not
computed.

VQA: there is no pip package of the VQA API, so `VQAEvalV1` below is an implementation written for this file
that follows, step by step, the VQA API's `vqaEval.py` as VL-T5 (`VQAEvaluator.evaluate_raw`, VL-T5/src/
vqa_data.py) and VL-Adapter (VL-T5/src/vqa_clip_data.py) use it: the pre-March-2021 API (the prediction always
normalised; gold answers only through processPunctuation, and only when they disagree). Its tables (punctuation,
number words, articles, contractions) are the ones of those files. When this golden was made, the values were
also compared with VL-Adapter's own `VQAEvaluator.evaluate_raw` on the same cases (identical).

Every float is written as its Python `repr` in a JSON *string* ("0.9999999997944449"): Rust's `str::parse::<f64>`
reads that back as the same double, while serde_json's default number parser can be one ulp off.
"""
import json
import os
import re

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

HERE = os.path.dirname(os.path.abspath(__file__))


def num(x):
    """A float as the string that reads back as the same double."""
    return repr(float(x))


class VQAEvalV1:
    """The answer processing and accuracy of vqaEval.py (pre-2021), as VL-T5 / VL-Adapter evaluate."""

    PUNCT = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!']
    NUMBERS = {'none': '0', 'zero': '0', 'one': '1', 'two': '2', 'three': '3', 'four': '4', 'five': '5',
               'six': '6', 'seven': '7', 'eight': '8', 'nine': '9', 'ten': '10'}
    ARTICLES = ['a', 'an', 'the']
    CONTRACTIONS = {
        "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
        "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
        "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
        "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
        "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
        "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
        "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
        "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
        "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
        "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
        "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
        "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
        "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
        "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
        "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
        "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
        "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
        "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
        "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
        "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
        "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
        "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
        "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
        "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
        "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
        "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
        "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
        "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
        "youve": "you've",
    }
    # The official pattern, a look-ahead where a look-behind was meant, used with re.UNICODE (32) as `count`.
    PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
    COMMA = re.compile(r"(\d)(\,)(\d)")

    def punctuation(self, text):
        out = text
        delete = self.COMMA.search(text) is not None
        for p in self.PUNCT:
            if delete or (p + ' ' in text) or (' ' + p in text):
                out = out.replace(p, '')
            else:
                out = out.replace(p, ' ')
        return self.PERIOD.sub('', out, 32)

    def digit_article(self, text):
        words = [self.NUMBERS.get(w, w) for w in text.lower().split()]
        words = [w for w in words if w not in self.ARTICLES]
        return ' '.join(self.CONTRACTIONS.get(w, w) for w in words)

    def normalize(self, answer):
        answer = answer.replace('\n', ' ').replace('\t', ' ').strip()
        return self.digit_article(self.punctuation(answer))

    def accuracy(self, prediction, gold):
        """One question; `gold` as annotation dicts (answer, answer_id), as the official loop sees them."""
        pred = self.normalize(prediction)
        answers = [{'answer': g, 'answer_id': i + 1} for i, g in enumerate(gold)]
        if len(set(gold)) > 1:
            for a in answers:
                a['answer'] = self.punctuation(a['answer'])
        accs = []
        for a in answers:
            others = [o for o in answers if o != a]
            accs.append(min(1, float(len([o for o in others if o['answer'] == pred])) / 3))
        return float(sum(accs)) / len(accs)


def rep(pairs):
    """Ten annotator answers from (answer, times) pairs."""
    out = [a for a, n in pairs for _ in range(n)]
    assert len(out) == 10, out
    return out


VQA_CASES = [
    # (name, prediction, the 10 gold answers)
    ("exact_unanimous", "yes", rep([("yes", 10)])),
    ("case_and_period", "Yes.", rep([("yes", 9), ("no", 1)])),
    ("digit_word_4_annotators", "Two", rep([("2", 4), ("3", 6)])),
    ("match_3_annotators", "3", rep([("3", 3), ("4", 7)])),
    ("match_2_annotators", "four", rep([("4", 2), ("5", 8)])),
    ("match_1_annotator", "none", rep([("0", 1), ("1", 9)])),
    ("match_0_annotators", "cat", rep([("dog", 6), ("puppy", 4)])),
    ("articles", "A red bus", rep([("red bus", 5), ("bus", 5)])),
    ("contraction", "dont know", rep([("don't know", 3), ("no", 7)])),
    ("number_with_comma", "1,000", rep([("1000", 4), ("100", 6)])),
    ("comma_between_words", "red,white", rep([("red white", 3), ("red , white", 2), ("red", 5)])),
    ("spaced_punctuation", "red / white", rep([("red white", 3), ("red/white", 3), ("white", 4)])),
    ("hyphen_gold_punctuation", "t-shirt", rep([("t-shirt", 5), ("tshirt", 3), ("shirt", 2)])),
    ("decimal_kept", "3.5", rep([("3.5", 2), ("35", 2), ("3", 6)])),
    ("whitespace", "\t yes\nsir \n", rep([("yes sir", 4), ("yes", 6)])),
    ("unanimous_gold_not_normalised", "two", rep([("two", 10)])),
    ("apostrophe_kept", "I'm", rep([("i'm", 3), ("im", 3), ("me", 4)])),
    ("question_mark", "what?", rep([("what", 4), ("what?", 2), ("huh", 4)])),
]

NORMALISATION_INPUTS = [
    "Yes.", "The Two Dogs", "an apple a day", "dont", "Dont", "Im", "I'm", "somebody'd", "1,000", "1,000 (approx)",
    "red,white", "red , white", "red, white", "(red)", "red (white)", "5.", "3.5", "e.g.", "1..2", ".5", "a.b.c",
    "x." * 40, "t-shirt", "t - shirt", "#1", "50%", "$5", "a&b", "what?!", "yes!", "hello world!", "C++",
    "back\\slash", "under_score", "<html>", "@home", "`tick`", "\"quoted\"", "{curly}", "[square]", "a=b",
    "semi;colon", "colon: x", "ten ten", "zero none", "none of them", "the the the", "  spaced   out  ",
    "\ttab\tand\nnewline\n", "yes\x1cno", "yes\u00a0no", "\u00c9l\u00e8ve", "\u0130stanbul", "\u0663.\u0665",
    "\u0663,\u0665 x", "ONE", "won't", "wont", "y'allll", "let's", "", " ", ".", ",", "?",
]


def vqa_golden():
    ev = VQAEvalV1()
    cases = []
    for name, pred, gold in VQA_CASES:
        cases.append({"name": name, "prediction": pred, "gold": gold, "normalized": ev.normalize(pred),
                      "accuracy": num(ev.accuracy(pred, gold))})
    corpus = float(sum(ev.accuracy(pred, gold) for _, pred, gold in VQA_CASES)) / len(VQA_CASES)
    normalisation = [{"input": s, "normalized": ev.normalize(s), "punctuation": ev.punctuation(s)}
                     for s in NORMALISATION_INPUTS]
    words = list(ev.CONTRACTIONS) + list(ev.NUMBERS) + ev.ARTICLES
    return {"cases": cases, "corpus_accuracy": num(corpus), "normalisation": normalisation,
            "table_words": [[w, ev.normalize(w)] for w in words]}


CAPTIONS = [
    # (prediction, references): pre-tokenised, as PTBTokenizer would leave them.
    ("a man riding a wave on top of a surfboard",
     ["a man riding a wave on top of a surfboard", "a surfer rides a large wave in the ocean",
      "a person on a surfboard riding a wave", "a man surfing on a big wave"]),
    ("a cat",
     ["a cat sitting on a couch next to a remote control", "a black and white cat lying on a sofa",
      "a cat is resting on the couch"]),
    ("a dog dog dog dog running running in the the grass",
     ["a dog running through the grass", "a brown dog runs across a grassy field",
      "a dog is running in the grass", "a puppy playing in the green grass", "dog running on a lawn"]),
    ("purple elephants juggle quietly",
     ["two people standing in a kitchen", "a kitchen with a man and a woman cooking",
      "people are preparing food in the kitchen"]),
    ("a plate of food with broccoli and rice on a wooden table next to a glass of water and a fork",
     ["a plate of food with broccoli and rice", "a meal of rice and vegetables on a plate",
      "broccoli and rice served on a white plate", "a dinner plate with chicken broccoli and rice"]),
    ("a red double decker bus driving down a street",
     ["a red double decker bus on a city street", "a double decker bus drives down the road",
      "a red bus driving down a street next to buildings"]),
    ("two giraffes standing in a field",
     ["two giraffes standing next to each other in a field", "a pair of giraffes in a grassy field",
      "giraffes standing in the grass near trees", "two giraffes in a zoo enclosure"]),
    ("a man a man a man holding a umbrella",
     ["a man holding an umbrella in the rain", "a person with a black umbrella walking",
      "a man holding an open umbrella on a street", "a man walks in the rain with an umbrella",
      "someone holding an umbrella"]),
]

EDGE_CAPTIONS = [
    ("", ["a train on the tracks", "a long train passing a station", "a train"]),
    ("a train", ["a train on the tracks", "a long train passing a station", "a train"]),
    # closest reference length: 5 and 7 are both 1 away from 6, the shorter wins
    ("a small boat on the lake", ["a boat on a lake", "a small white boat floating on water"]),
]


def caption_golden(samples):
    gts = {i: list(refs) for i, (_, refs) in enumerate(samples)}
    res = {i: [pred] for i, (pred, _) in enumerate(samples)}
    bleu, bleu_img = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_img = Rouge().compute_score(gts, res)
    cider, cider_img = Cider().compute_score(gts, res)
    return {
        "predictions": [p for p, _ in samples],
        "references": [list(r) for _, r in samples],
        "bleu": [num(x) for x in bleu],
        "bleu_per_image": [[num(bleu_img[k][i]) for k in range(4)] for i in range(len(samples))],
        "rouge_l": num(rouge),
        "rouge_l_per_image": [num(x) for x in rouge_img],
        "cider": num(cider),
        "cider_per_image": [num(x) for x in cider_img],
    }


def main():
    golden = {
        "generator": "vl_metrics_reference.py (pycocoevalcap==1.2, numpy==2.4.6, python 3.11.7)",
        "vqa": vqa_golden(),
        "captions": {
            "main": caption_golden(CAPTIONS),
            "edge": caption_golden(EDGE_CAPTIONS),
            "single": caption_golden(CAPTIONS[:1]),
        },
    }
    path = os.path.join(HERE, "vl_metrics_golden.json")
    with open(path, "w") as f:
        json.dump(golden, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
