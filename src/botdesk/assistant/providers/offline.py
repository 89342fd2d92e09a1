"""The offline provider: answers with the best knowledge entry, no model, no network.

Owns nothing but the rule "the top hit's answer, verbatim"; whether it is confident enough is
the service's decision (it compares ``confidence`` with its threshold before calling). Where
the entry has a version in the subscriber's language (``AssistantRequest.languages``) that
version is the answer; otherwise the entry's own text, in the knowledge base's language.
"""

from __future__ import annotations

from botdesk.assistant.providers.base import AssistantReply, AssistantRequest


class OfflineProvider:
    name = "offline"

    async def answer(self, req: AssistantRequest) -> AssistantReply:
        if not req.hits:
            return AssistantReply("", [], 0.0, handoff=True, reason="no_match", provider=self.name)
        best = req.hits[0]
        version = best.entry.version(req.preferred)
        return AssistantReply(
            version.answer if version is not None else best.entry.answer,
            [best.entry.key],
            best.confidence,
            handoff=False,
            provider=self.name,
            language=version.language if version is not None else None,
        )

    async def aclose(self) -> None:
        return None
