"""One place wires the graph. Read top to bottom, one trading session per loop:

    open_session -> reward -> reflect -> [news | filings | macro | market analysts] -> direction
                 -> risk -> execute -> close_session -> (next session: open_session | finish)

Each node is a factory in its own module: the bookkeeping nodes in ``agents.nodes`` (one module
each), the analysts in ``agents.analysts``, the direction agent in ``agents.direction`` and the
risk agent beside the Kelly/CVaR maths in ``agents.risk``. ``reward`` and ``reflect`` run first
because the rewards maturing at this session's close are known before its decision.

``build_graph(deps)`` returns the uncompiled ``StateGraph``; ``agents.runtime`` compiles it with the
SQLite checkpointer. Nothing is compiled or connected at import time.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from agents.analysts import make_analyst, make_market_analyst
from agents.deps import Deps
from agents.direction import make_direction_agent
from agents.nodes.close_session import make_close_session, route_after_close
from agents.nodes.execute import make_execute_node
from agents.nodes.finish import make_finish_node
from agents.nodes.open_session import make_open_session
from agents.nodes.reflect import make_reflect_node
from agents.nodes.reward import make_reward_node
from agents.risk import make_risk_node
from agents.state import ANALYST_NODES, AnalystKind, NodeName, RunState


def enabled_analysts(deps: Deps) -> list[AnalystKind]:
    cfg = deps.config.analysts
    flags = {AnalystKind.NEWS: cfg.news, AnalystKind.FILINGS: cfg.filings, AnalystKind.MACRO: cfg.macro, AnalystKind.MARKET: cfg.market}
    return [kind for kind, on in flags.items() if on]


def build_graph(deps: Deps) -> StateGraph:
    g = StateGraph(RunState)
    g.add_node(NodeName.OPEN_SESSION.value, make_open_session(deps))
    g.add_node(NodeName.REWARD.value, make_reward_node(deps))
    g.add_node(NodeName.REFLECT.value, make_reflect_node(deps))
    analysts = enabled_analysts(deps)
    for kind in analysts:
        node = make_market_analyst(deps) if kind == AnalystKind.MARKET else make_analyst(kind, deps)
        g.add_node(ANALYST_NODES[kind].value, node)
    g.add_node(NodeName.DIRECTION.value, make_direction_agent(deps))
    g.add_node(NodeName.RISK.value, make_risk_node(deps))
    g.add_node(NodeName.EXECUTE.value, make_execute_node(deps))
    g.add_node(NodeName.CLOSE_SESSION.value, make_close_session(deps))
    g.add_node(NodeName.FINISH.value, make_finish_node(deps))

    g.add_edge(START, NodeName.OPEN_SESSION.value)
    g.add_edge(NodeName.OPEN_SESSION.value, NodeName.REWARD.value)
    g.add_edge(NodeName.REWARD.value, NodeName.REFLECT.value)
    # Fan out to the analysts in parallel; the direction agent waits for all of them.
    analyst_nodes = [ANALYST_NODES[k].value for k in analysts]
    for name in analyst_nodes:
        g.add_edge(NodeName.REFLECT.value, name)
    if analyst_nodes:
        g.add_edge(analyst_nodes, NodeName.DIRECTION.value)
    else:
        g.add_edge(NodeName.REFLECT.value, NodeName.DIRECTION.value)
    g.add_edge(NodeName.DIRECTION.value, NodeName.RISK.value)
    g.add_edge(NodeName.RISK.value, NodeName.EXECUTE.value)
    g.add_edge(NodeName.EXECUTE.value, NodeName.CLOSE_SESSION.value)
    g.add_conditional_edges(
        NodeName.CLOSE_SESSION.value,
        route_after_close,
        {NodeName.OPEN_SESSION.value: NodeName.OPEN_SESSION.value, NodeName.FINISH.value: NodeName.FINISH.value},
    )
    g.add_edge(NodeName.FINISH.value, END)
    return g
