"""The session's bookkeeping nodes, one module each, in the order they run in a session:

    open_session -> reward -> reflect -> (analysts, agents.analysts) -> (direction, agents.direction)
                 -> (risk, agents.risk) -> execute -> close_session -> open_session | finish

``reward`` and ``reflect`` run at the start of a session because the session's close is the first
moment the reward parts maturing today are known: the agent learns from them before it decides.

Every side effect is idempotent, because after a crash LangGraph re-runs the interrupted node from
its start: the broker and reward trackers are rebuilt from the state (never mutated in place),
histories go to the run journal under deterministic keys, memory writes are upserts by
deterministic id, adapter versions are files named by session, and traces are keyed.
"""
