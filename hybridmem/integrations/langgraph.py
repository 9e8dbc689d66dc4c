"""LangGraph: a chat node that recalls before the LLM call and remembers after it.

    pip install 'hybridmem[langgraph]'

    from langchain_openai import ChatOpenAI
    from hybridmem import Memory
    from hybridmem.integrations.langgraph import build_chat_graph

    graph = build_chat_graph(Memory(), ChatOpenAI(model="qwen-plus"))
    state = graph.invoke({"messages": [("user", "I live in Lisbon")], "user_id": "alice"})

The node is the article's Practice 1 chatbot, without its loop back to itself: search the
user's memories with the last message, put the hits in a system message, call the model,
store the exchange. Memory failures never break the conversation unless asked to.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langchain_core.messages import SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from hybridmem.errors import HybridMemError
from hybridmem.memory import Memory

if TYPE_CHECKING:
    from hybridmem.client import MemoryClient

log = logging.getLogger(__name__)

DEFAULT_PROMPT = (
    "You are a helpful assistant. Use the following context from previous "
    "conversations when it is relevant:\n{context}"
)


class ChatState(TypedDict):
    """The graph's state: the conversation and whose memory it is."""

    messages: Annotated[list, add_messages]
    user_id: str


class MemoryChatNode:
    """A LangGraph node: recall, answer, remember.

    Args:
        memory: the hybridmem `Memory`, or a `MemoryClient` of a `hybridmem serve`.
        llm: a LangChain chat model (anything with `.invoke(messages)`).
        user_key: the state key that holds the user id.
        limit: how many memories go into the prompt.
        system_prompt: a template with `{context}`.
        raise_memory_errors: raise instead of answering without memory when hybridmem fails.
        remember_in_background: hand the exchange to `Memory.add(..., wait=False)` so the
            reply does not wait on extraction (journaled first, so nothing is lost; a
            search in the very next turn may not see it yet). `Memory` only.
    """

    def __init__(self, memory: Memory | MemoryClient, llm: Any, *, user_key: str = "user_id",
                 limit: int = 5, system_prompt: str = DEFAULT_PROMPT,
                 raise_memory_errors: bool = False,
                 remember_in_background: bool = False) -> None:
        self.memory = memory
        self.llm = llm
        self.user_key = user_key
        self.limit = limit
        self.system_prompt = system_prompt
        self.raise_memory_errors = raise_memory_errors
        self.remember_in_background = remember_in_background and isinstance(memory, Memory)

    def __call__(self, state: dict[str, Any]) -> dict[str, Any]:
        """Answer the last message with the user's memories in the system prompt."""
        messages = state["messages"]
        user_id = state[self.user_key]
        question = messages[-1].content
        context = ""
        try:
            hits = self.memory.search(question, user_id=user_id, limit=self.limit)["results"]
            context = "\n".join(f"- {hit['memory']}" for hit in hits)
        except HybridMemError as exc:
            self._memory_failed("search", exc)
        prompt = self.system_prompt.format(context=context or "(nothing remembered yet)")
        response = self.llm.invoke([SystemMessage(content=prompt), *messages])
        exchange = [{"role": "user", "content": question},
                    {"role": "assistant", "content": response.content}]
        try:
            if self.remember_in_background:
                assert isinstance(self.memory, Memory)
                self.memory.add(exchange, user_id=user_id, wait=False)
            else:
                self.memory.add(exchange, user_id=user_id)
        except HybridMemError as exc:
            self._memory_failed("add", exc)
        return {"messages": [response]}

    def _memory_failed(self, what: str, exc: HybridMemError) -> None:
        if self.raise_memory_errors:
            raise exc
        log.warning("hybridmem %s failed, answering without it: %s", what, exc)


def build_chat_graph(memory: Memory | MemoryClient, llm: Any, **node_options: Any):
    """A compiled LangGraph `START -> chatbot -> END` graph around `MemoryChatNode`.

    Invoke it with `{"messages": [...], "user_id": "..."}`.
    """
    graph = StateGraph(ChatState)
    graph.add_node("chatbot", MemoryChatNode(memory, llm, **node_options))
    graph.add_edge(START, "chatbot")
    graph.add_edge("chatbot", END)
    return graph.compile()
