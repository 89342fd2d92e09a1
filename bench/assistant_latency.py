"""Offline answer latency at 1,000 knowledge entries, and the pipeline's own overhead.

Usage: .venv/bin/python bench/assistant_latency.py [--entries 1000] [--no-embeddings]
One core: OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/assistant_latency.py

The knowledge base is the 128-entry evaluation KB plus generated product entries up to
--entries. Each held-out question (tune + test, 232) is answered through
``AssistantService.respond`` with the offline provider; the query embedding is included.
"Overhead" is respond() time minus the time spent inside the provider's ``answer`` (measured
by a wrapper), i.e. everything botdesk adds around a model call.

Memory: resident set size before the model is loaded and after the index is built (model +
index + the process). Build: cold (empty embedding cache), then in a fresh embedder reading the
on-disk cache the first build wrote (what a later ``botdesk kb ask`` or a restart does).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from botdesk.assistant.embeddings import Embedder, load_default_embedder
from botdesk.assistant.knowledge import KnowledgeEntry, parse_knowledge
from botdesk.assistant.providers.base import AssistantReply, AssistantRequest
from botdesk.assistant.providers.offline import OfflineProvider
from botdesk.assistant.retrieval import Retriever
from botdesk.assistant.service import AssistantService

DATA = Path(__file__).resolve().parents[1] / "tests" / "assistant" / "data"
PRODUCTS = [
    "Alpine 40 backpack", "Ridge rain jacket", "Summit down parka", "Trail runner shoes",
    "Basecamp 3 tent", "Merino base layer", "Glacier sleeping bag", "Canyon hiking pants",
    "Storm gloves", "Fjord fleece", "Peak trekking poles", "Valley day pack", "Crest beanie",
    "Drift softshell", "Harbor raincoat", "Tundra boots", "Meadow sun hat", "Pine hoodie",
    "Boulder climbing shoes", "River sandals", "Aurora headlamp", "Ember camp stove",
    "Lichen socks", "Cedar water bottle", "Granite duffel",
]  # fmt: skip
ASPECTS = [
    ("What is the weight of the {p}?", "The {p} weighs {n}00 g in size M."),
    ("Is the {p} available in other colours?", "The {p} comes in {n} colours."),
    ("How do I clean the {p}?", "Clean the {p} by hand with mild soap and let it air dry."),
    ("What is the warranty on the {p}?", "The {p} has a {n}-year warranty against defects."),
    ("Is the {p} suitable for winter?", "The {p} is rated down to -{n} °C when layered."),
    ("Where is the {p} made?", "The {p} is made in Portugal from {n}0% recycled materials."),
    ("Does the {p} come with a repair kit?", "Yes, the {p} ships with a small repair kit."),
    ("What sizes does the {p} come in?", "The {p} comes in sizes XS to {n}XL."),
    ("Can I buy spare parts for the {p}?", "Spare parts for the {p} are sold under Accessories."),
    ("Is the {p} vegan?", "The {p} contains no animal materials."),
    ("When will the {p} be restocked?", "New stock of the {p} arrives in about {n} weeks."),
    ("Does the {p} fit true to size?", "The {p} fits true to size; size up for layering."),
    ("What is the {p} made of?", "The {p} is made of recycled nylon with a PFC-free coating."),
    ("Can I return the {p} after using it outdoors?", "Used {p} returns are not accepted."),
    ("Is the {p} waterproof?", "The {p} is water resistant up to {n}0,000 mm."),
    ("How long does the {p} take to ship?", "The {p} ships within {n} business days."),
    ("Is there a women's version of the {p}?", "Yes, a women's cut of the {p} is available."),
    ("Does the {p} have a lifetime guarantee?", "No, the {p} has the standard warranty."),
    ("Can the {p} be personalised?", "The {p} can be embroidered for 9.95 EUR."),
    ("What does the {p} cost?", "The {p} costs {n}9.95 EUR."),
    ("Is the {p} good for kids?", "The {p} is sized for adults; see our kids range."),
    ("Is the {p} on sale?", "Current prices of the {p} are on its product page."),
    ("How do I store the {p}?", "Store the {p} clean, dry and uncompressed."),
    ("Can I rent the {p}?", "The {p} can be rented in our Munich and Berlin stores."),
    ("Does the {p} pack small?", "The {p} packs into its own pocket."),
    ("Which activities is the {p} designed for?", "The {p} is designed for hiking and trekking."),
    ("Does the {p} have reflective details?", "The {p} has reflective logos front and back."),
    ("Is the {p} machine washable?", "The {p} can be machine washed at 30 °C."),
    ("How breathable is the {p}?", "The {p} has a breathability of {n}0,000 g/m²/24h."),
    ("Who designed the {p}?", "The {p} was designed by our team in Munich."),
    ("Is the {p} compatible with other gear?", "The {p} works with our whole layering system."),
    ("Does the {p} have pockets?", "The {p} has {n} zipped pockets."),
    ("What colour is the {p} in the photo?", "The {p} in the photo is in Forest Green."),
    ("Can I use the {p} for running?", "The {p} is light enough for trail running."),
    ("How long does the {p} last?", "With care the {p} lasts many seasons."),
]  # fmt: skip


def knowledge(n: int) -> list[KnowledgeEntry]:
    base = parse_knowledge((DATA / "kb_eval.yaml").read_text(), filename="k.yaml", bot=None)
    entries = list(base.entries)
    i = 0
    while len(entries) < n:
        p = PRODUCTS[i % len(PRODUCTS)]
        q, a = ASPECTS[(i // len(PRODUCTS)) % len(ASPECTS)]
        digit = str(1 + i % 9)
        entries.append(
            KnowledgeEntry(f"gen-{i}", q.format(p=p), (), a.format(p=p, n=digit), ("product",))
        )
        i += 1
    return entries[:n]


class TimedProvider:
    def __init__(self) -> None:
        self.inner = OfflineProvider()
        self.name = self.inner.name
        self.spent = 0.0

    async def answer(self, req: AssistantRequest) -> AssistantReply:
        started = time.perf_counter()
        try:
            return await self.inner.answer(req)
        finally:
            self.spent += time.perf_counter() - started

    async def aclose(self) -> None:
        await self.inner.aclose()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)
    )


async def run(args: argparse.Namespace) -> None:
    entries = knowledge(args.entries)
    cache = Path(tempfile.mkdtemp(prefix="botdesk-bench-embeddings-"))
    before = rss_mb()

    def load() -> Embedder | None:
        return None if args.no_embeddings else load_default_embedder(cache_dir=cache).embedder

    embedder = load()
    started = time.perf_counter()
    retriever = Retriever.build(entries, embedder=embedder)
    build = time.perf_counter() - started
    after = rss_mb()
    started = time.perf_counter()
    Retriever.build(entries, embedder=load())
    rebuild = time.perf_counter() - started
    questions = yaml.safe_load((DATA / "kb_eval_questions.yaml").read_text())
    texts = [q["q"] for split in ("tune", "test") for q in questions[split]]
    provider = TimedProvider()
    service = AssistantService(
        provider=provider, retriever_for=lambda bot: retriever, per_subscriber_limit=10**9
    )
    for t in texts[:20]:  # warm-up
        await service.respond(bot="b", chat_id=1, text=t, language="en", history=[])
    total: list[float] = []
    overhead: list[float] = []
    for _rep in range(args.repeat):
        for chat, t in enumerate(texts):
            provider.spent = 0.0
            started = time.perf_counter()
            await service.respond(bot="b", chat_id=chat, text=t, language="en", history=[])
            elapsed = time.perf_counter() - started
            total.append(elapsed * 1000)
            overhead.append((elapsed - provider.spent) * 1000)
    search = []
    for t in texts:
        started = time.perf_counter()
        retriever.search(t, 5)
        search.append((time.perf_counter() - started) * 1000)
    print(
        f"entries: {len(entries)}; embedder: {embedder.name if embedder else 'none (lexical)'};"
        f" build {build:.1f} s (cold), {rebuild:.2f} s (new process's embedder, disk cache warm)"
    )
    print(f"memory (RSS): {before:.0f} MB before the model, {after:.0f} MB with model and index")
    print(f"questions: {len(texts)} x {args.repeat}")
    print(f"offline answer latency   p50 {pct(total, 50):6.2f} ms  p95 {pct(total, 95):6.2f} ms")
    print(
        f"pipeline overhead        p50 {pct(overhead, 50):6.2f} ms  p95 {pct(overhead, 95):6.2f} ms"
    )
    print(f"retrieval search() only  p50 {pct(search, 50):6.2f} ms  p95 {pct(search, 95):6.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-embeddings", action="store_true")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
