"""The Llama Fed: petitions to the Llama King, judged by a committee, paid under a monetary policy enforced in code.

Open     -> commit mood seeds, finish what a crash interrupted (grant a judged petition, resume the line, refund
            an offering held for a petition that was never logged)
Petition -> checks (length, duplicates, cooldown), offering into escrow, logged Open, the King acknowledges, and
            the petition joins the King's line: a durable backlog (every unjudged petition in the log, in order)
            from which a few at a time go to the committee, so a busy hour never fills the inference queue
Herd-*   -> each vote is logged; when all are in, the judge (npcs/actors/judge.py: the committee's grades, the world's
            graded examples, code-side signals), code-computed uniqueness, the committed mood and the clamped
            payout make a logged Verdict, then mint + settle (Granted), then the King's announcement
Failure  -> any vote failing (timeout, crash, invalid output, shutdown) refunds the offering
Every money decision is a logged entry before it happens, so a restart ends each petition with exactly one of
grant or refund, and `llama-land replay` rebuilds the same state.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from server.core.units import UNIT, show
from server.core.actors import Bus, Message, action
from server.core.logged import LoggedActor
from server.core.log import MessageLog

from npcs.actors import fairness
from npcs.actors import judge
from npcs.actors import policy
from npcs.actors.fed_state import VERDICT_FIELDS, FedState
from npcs.actors.memory import NpcMemory
from npcs.npcfile import NpcSpec
from server.core.protocol import Code
from server.economy.ledger import change

log = logging.getLogger("llama_land.fed")
GRADE = re.compile(r"grade=([0-5])")
COUNTED = ("judging", "judged", "granted")  # statuses that use up cooldown and count as earlier petitions
REVEALED_SHOWN = 24
BACKLOG_MAX = 10_000  # unjudged petitions at once: far past any busy hour (the cooldown bounds each player)


class FedActor(LoggedActor):
    State = FedState
    state: FedState

    def __init__(self, bus: Bus, log_: MessageLog, memory: NpcMemory, king: NpcSpec, king_room: str,
                 committee: list[NpcSpec], endowments: dict[str, int], inference: bool = True,
                 concurrency: int = 2):
        """concurrency: petitions whose votes are with the herd at once (the rest wait in the King's line)."""
        super().__init__("fed", log_)
        self.bus, self.memory = bus, memory
        self.configure(king, king_room, committee)
        self.endowments, self.inference = endowments, inference
        self.shingles = {pid: set(policy.shingles(p["Text"])) for pid, p in self.state.petitions.items()}
        self.lines = 0
        self.concurrency = max(1, concurrency)
        self.judging: set[str] = set()  # petitions whose votes are with the herd; the rest of the line waits
        self.line_start = 0  # every petition before this place in the log's order is judged or refunded
        self.told: dict[str, int] = {}  # the last place in line each waiting petitioner was told
        for name, fn in [("Petition", self.on_petition), ("Petitions", self.on_petitions), ("Info", self.on_info),
                         ("Herd-Done", self.on_vote), ("Herd-Failed", self.on_job_failed),
                         ("Tick", self.on_tick), ("Quote", self.on_quote)]:
            self.handle(name.lower(), action(name), fn)
        # A vote's place in the herd's queue: the petitioner is told their place in the King's line instead (pump).
        for ignored in ("Herd-Queued", "Herd-Started"):
            self.handle(ignored.lower(), action(ignored), lambda msg: None)

    @classmethod
    def build(cls, presence: Any, ctx: Any) -> "FedActor":
        """The King's actor: his file, room and committee; each Oracle's pool and each trader is endowed once."""
        king, endowed = presence.spec, ctx.cast.of_kind("oracle") + ctx.cast.of_kind("trader")
        return cls(ctx.bus, ctx.log, ctx.memory, king, presence.room, [ctx.cast.specs[m] for m in king.committee],
                   {o.id: o.economy["endowment"] for o in endowed}, inference=ctx.inference,
                   concurrency=ctx.fed_concurrency)

    def configure(self, king: NpcSpec, king_room: str, committee: list[NpcSpec]) -> None:
        """The King's file, room and committee, and the policy in his [economy] (again at a reload)."""
        self.king, self.king_room, self.committee = king, king_room, committee
        e = king.economy
        self.policy = policy.Policy(e["offering"], e["max_payout"], e["hourly_cap"], e["cooldown_count"],
                                    int(e["cooldown_hours"] * policy.HOUR_MS), e["epoch_seconds"] * 1000,
                                    e["petition_min"], e["petition_max"])

    def backlog(self) -> list[str]:
        """The King's line: every unjudged petition, oldest first, from the log (so a restart resumes it); scanned
        from the oldest unjudged one on, since the history only grows."""
        order, petitions = self.state.order, self.state.petitions
        while self.line_start < len(order) and petitions[order[self.line_start]]["Status"] != "judging":
            self.line_start += 1
        return [pid for pid in order[self.line_start:] if petitions[pid]["Status"] == "judging"]

    # --- open: commitments, endowments, and whatever a crash left half done ------------------------------------

    async def open(self, t: int) -> None:
        await self.commit_epochs(t)
        for account, amount in sorted(self.endowments.items()):
            if account not in self.state.endowed and amount > 0:
                await self.record({"Action": "Endow", "To": account, "Amount": amount, "Reason": "pool", "T": t})
            if account in self.state.endowed:  # a Ref makes the mint happen once, even if a crash came between
                await self.ledger("LLAMA", "Mint", To=account, Amount=self.state.endowed[account], By="fed",
                                  Ref=f"endow:{account}", Memo="endowment", T=t)
        for pid, p in self.state.petitions.items():
            if p["Status"] == "judged":
                await self.grant(pid, t, announce=False)
        escrows = (await self.ledger("wAR", "Escrows", Prefix="petition:", T=t))["Escrows"]
        for escrow in sorted(escrows):  # an offering held for a petition the log never opened: give it back
            pid = escrow.removeprefix("petition:")
            if self.state.petitions.get(pid, {}).get("Status") != "judging":
                await self.fail(pid, Code.RESTART, "the server restarted before the petition was logged", t, escrow=escrow)
        if self.inference:
            await self.pump(t)  # the line resumes where it was: votes already logged are kept
        else:
            for pid in self.backlog():
                await self.fail(pid, Code.UNAVAILABLE, "this server runs without inference and cannot judge", t)

    async def commit_epochs(self, t: int) -> None:
        """The current and the next epoch have published commitments, before any seed is used."""
        now = fairness.epoch_of(t, self.policy.epoch_ms)
        for epoch in (now, now + 1):
            if str(epoch) not in self.state.epochs:
                seed = fairness.new_seed()
                await self.record({"Action": "Commit", "Epoch": epoch, "Seed": seed,
                                   "Commitment": fairness.commitment(seed), "T": t})

    async def ledger(self, token: str, kind: str, fresh: bool = False, **fields: Any) -> Message:
        return await change(self.bus, token, {"Action": kind, **fields}, fresh=fresh)  # retried with its key

    # --- a petition arrives -------------------------------------------------------------------------------------

    async def on_petition(self, msg: Message) -> None:
        player, t, p = msg["Player"], msg["T"], self.policy
        if not self.inference:
            self.refuse(msg, Code.UNAVAILABLE, "the Fed needs inference to judge, and this server runs without it")
            return
        text = " ".join(msg["Text"].split())
        earlier = self.duplicate_of(player, text, msg.get("Key"), t)
        if earlier is not None:  # the same petition again: answer with the first one, charge nothing
            self.answer(msg, PetitionId=earlier, Status=self.state.petitions[earlier]["Status"], Duplicate=True,
                       Offering=self.state.petitions[earlier]["Offering"])
            return
        if len(self.backlog()) >= BACKLOG_MAX:
            self.refuse(msg, Code.QUEUE_FULL, f"{BACKLOG_MAX} petitions are waiting for the King; try again later")
            return
        if not p.min_chars <= len(text) <= p.max_chars:
            self.refuse(msg, Code.BAD_PETITION, f"a petition is {p.min_chars}-{p.max_chars} characters, got {len(text)}")
            return
        mine = [q["T"] for q in self.state.petitions.values() if q["Player"] == player and q["Status"] in COUNTED]
        until = policy.cooldown_until(mine, t, p)
        if until is not None:
            self.refuse(msg, Code.COOLDOWN, f"at most {p.cooldown_count} petitions per {p.cooldown_ms // 3_600_000} "
                                         f"hours; the next may be made at {until}", RetryAt=until)
            return
        await self.commit_epochs(t)
        pid = "p-" + hashlib.sha256(f"{player}|{t}|{len(self.state.order)}".encode()).hexdigest()[:16]
        if p.offering:
            held = await self.ledger("wAR", "Hold", Escrow=f"petition:{pid}", From=player, Amount=p.offering,
                                     For="petition", T=t, fresh=True)
            if held["Action"] == "Error":
                self.refuse(msg, held["Code"], f"the offering is {show(p.offering)} wAR: {held['Message']}")
                return
        await self.record({"Action": "Open", "Pid": pid, "Player": player, "Text": text, "Offering": p.offering,
                           "Key": msg.get("Key"), "T": t})
        self.shingles[pid] = set(policy.shingles(text))
        self.answer(msg, PetitionId=pid, Status="judging", Duplicate=False, Offering=p.offering,
                   Committee=[m.name for m in self.committee])
        self.say(self.king.line("ack", self.next_line(), player=player) or f"Give me a moment, {player}.", t)
        await self.pump(t)

    async def pump(self, t: int) -> None:
        """Send the oldest waiting petitions' missing votes to the herd, a few petitions at a time, then tell every
        petitioner still waiting their place in the King's line."""
        for pid in self.backlog():
            if len(self.judging) >= self.concurrency:
                break
            # (re-checked: a submission that failed, or a verdict reached at once, may have closed it meanwhile)
            if pid not in self.judging and self.state.petitions[pid]["Status"] == "judging":
                self.judging.add(pid)
                await self.submit_votes(pid, t)
        waiting = [pid for pid in self.backlog() if pid not in self.judging]
        for place, pid in enumerate(waiting, start=len(self.judging) + 1):
            if self.told.get(pid) != place:
                self.told[pid] = place
                self.thinking(pid, place)

    async def submit_votes(self, pid: str, t: int) -> None:
        p = self.state.petitions[pid]
        self.told.pop(pid, None)
        self.thinking(pid, 0)
        for member, template in self.jobs():
            if member.id in p["Votes"]:  # logged before a restart: it stands
                continue
            values = {"persona": member.persona, "player": p["Player"], "petition": p["Text"],
                      "memory": self.memory.recall(self.king.id, p["Player"])}
            accepted = await self.bus.call("herd", {
                "Action": "Submit", "Template": template.id, "Values": {k: values[k] for k in template.variables},
                "RequestId": f"{pid}:{member.id}", "Requester": "fed", "Priority": 5,
                "Notify": self.id, "T": t})
            if accepted["Action"] == "Error":
                await self.fail(pid, accepted["Code"], accepted["Message"], t)
                return
        if len(p["Votes"]) == len(self.jobs()):  # every vote was in the log already
            await self.verdict(pid)

    def thinking(self, pid: str, place: int) -> None:
        self.bus.send(f"player:{self.state.petitions[pid]['Player']}", {"Action": "NpcThinking", "Npc": self.king.id,
                                                                         "PetitionId": pid, "Position": place})

    def jobs(self) -> list[tuple[NpcSpec, Any]]:
        if self.committee:
            return [(m, m.templates["vote"]) for m in self.committee]
        return [(self.king, self.king.templates["grade"])]

    def duplicate_of(self, player: str, text: str, key: str | None, t: int) -> str | None:
        if key and f"{player}|{key}" in self.state.keys:
            return self.state.keys[f"{player}|{key}"]
        norm = policy.normalize(text)
        for pid in reversed(self.state.order):
            q = self.state.petitions[pid]
            if q["T"] <= t - self.policy.cooldown_ms:
                break
            if q["Player"] == player and q["Status"] in COUNTED and policy.normalize(q["Text"]) == norm:
                return pid
        return None

    # --- votes come back ------------------------------------------------------------------------------------------

    async def on_vote(self, msg: Message) -> None:
        pid, _, role = msg["RequestId"].rpartition(":")
        p = self.state.petitions.get(pid)
        if p is None:
            return
        if role == "announce":
            await self.record({"Action": "Announced", "Pid": pid, "Text": msg["Text"], "ReceiptId": msg["ReceiptId"],
                               "T": msg.get("T", p["T"])})
            self.say(msg["Text"], p["T"])
            return
        if p["Status"] != "judging":  # a late vote for a petition that already failed and was refunded
            return
        vote: dict[str, Any] = {"Action": "Vote", "Pid": pid, "Member": role, "ReceiptId": msg["ReceiptId"],
                                "T": p["T"]}
        scores = msg.get("Scores")
        if scores and set(scores) <= set("012345"):  # a scored vote: the worker's answer ends with its grade
            vote.update(Grade=int(msg["Text"].strip()[-1]), Expected=round(judge.expected_grade(scores), 3))
        else:
            found = GRADE.fullmatch(msg["Text"].strip())
            if found is None:
                await self.fail(pid, Code.INVALID_OUTPUT, f"a vote was not a grade: {msg['Text'][:40]!r}", p["T"])
                return
            vote["Grade"] = int(found.group(1))
        await self.record(vote)
        if len(p["Votes"]) == len(self.jobs()):
            await self.verdict(pid)

    async def verdict(self, pid: str) -> None:
        p, t = self.state.petitions[pid], self.state.petitions[pid]["T"]
        config, examples = self.king.judge
        judged = judge.judge(p["Text"], [v[2] if len(v) > 2 else v[0] for v in p["Votes"].values()], examples, config)
        earlier = [self.shingles[q] for q in self.state.order
                   if q != pid and self.state.petitions[q]["Status"] in COUNTED]
        unique, closest = policy.uniqueness(p["Text"], earlier)
        epoch = fairness.epoch_of(t, self.policy.epoch_ms)
        mood = fairness.mood(self.state.epochs[str(epoch)]["Seed"], pid)
        supply = await self.ledger("LLAMA", "Total-Supply", T=t)
        paid = policy.payout(judged.grade, unique, mood, UNIT, self.policy,
                             policy.emitted_since(self.state.emissions, t), supply["TotalSupply"], supply["Cap"])
        await self.record({"Action": "Verdict", "Pid": pid, "Grade": judged.grade, "Committee": judged.committee,
                           "Examples": judged.examples, "Blended": judged.blended, "Neighbours": judged.neighbours,
                           "Uniqueness": unique, "Similarity": round(closest, 3), "Mood": mood, "Epoch": epoch,
                           "Payout": paid.amount, "Formula": paid.formula,
                           "Clamps": judged.clamps + list(paid.clamps), "T": t})
        self.judging.discard(pid)
        await self.grant(pid, t, announce=True)
        await self.pump(t)

    async def grant(self, pid: str, t: int, announce: bool) -> None:
        """Mint (once: the Ref), settle the offering to the Fed, tell the petitioner. Safe to repeat after a crash."""
        p = self.state.petitions[pid]
        if p["Payout"]:
            minted = await self.ledger("LLAMA", "Mint", To=p["Player"], Amount=p["Payout"], By="fed",
                                       Ref=f"petition:{pid}", Memo=f"verdict {pid}", T=t)
            if minted["Action"] == "Error" and minted["Code"] != Code.DUPLICATE_REF:
                log.error("minting the verdict of %s failed: %s", pid, minted["Message"])
        if p["Offering"]:
            settled = await self.ledger("wAR", "Settle", Escrow=f"petition:{pid}", To="fed", T=t)
            if settled["Action"] == "Error" and settled["Code"] != Code.UNKNOWN_ESCROW:
                log.error("settling the offering of %s failed: %s", pid, settled["Message"])
        await self.record({"Action": "Granted", "Pid": pid, "T": t})
        self.memory.remember(self.king.id, p["Player"], t, last_petition=p["Text"],
                             last_verdict=f"grade {p['Grade']}, paid {show(p['Payout'])} LLAMA")
        self.bus.send(f"player:{p['Player']}", {"Action": "Granted", **self.describe(pid)})
        if announce:
            await self.announce(pid, t)

    async def announce(self, pid: str, t: int) -> None:
        if self.backlog():  # the King's words must never delay a verdict: with a line waiting, he reads them out
            self.say(self.scripted_verdict(pid), t)
            return
        p, template = self.state.petitions[pid], self.king.templates["announce"]
        votes = ", ".join(f"{m.name} {p['Votes'][m.id][0]}" for m, _ in self.jobs())
        values = {"persona": self.king.persona, "player": p["Player"], "petition": p["Text"], "grade": p["Grade"],
                  "votes": votes, "payout": f"{show(p['Payout'])}", "memory": self.memory.recall(self.king.id,
                                                                                                    p["Player"])}
        accepted = await self.bus.call("herd", {
            "Action": "Submit", "Template": template.id, "Values": {k: values[k] for k in template.variables},
            "RequestId": f"{pid}:announce", "Requester": "fed", "Priority": 20,
            "Notify": self.id, "T": t})
        if accepted["Action"] == "Error":
            self.say(self.scripted_verdict(pid), t)

    def scripted_verdict(self, pid: str) -> str:
        p = self.state.petitions[pid]
        return self.king.line("verdict", self.next_line(), player=p["Player"], grade=str(p["Grade"]),
                              payout=f"{show(p['Payout'])}") or \
            f"{p['Player']}, your petition is graded {p['Grade']}: {show(p['Payout'])} LLAMA."

    async def on_job_failed(self, msg: Message) -> None:
        pid, _, role = msg["RequestId"].rpartition(":")
        p = self.state.petitions.get(pid)
        if p is None:
            return
        if role == "announce":  # the verdict stands and is paid; only the King's words are missing
            self.say(self.scripted_verdict(pid), p["T"])
        elif p["Status"] == "judging" and msg["Code"] == Code.SHUTDOWN:  # stays in the line: the next start resumes it
            self.judging.discard(pid)
        elif p["Status"] == "judging":
            await self.fail(pid, msg["Code"], msg["Message"], p["T"])

    async def fail(self, pid: str, code: str, message: str, t: int, escrow: str | None = None) -> None:
        """Refund the offering (if it is still held) and close the petition; the petitioner is told why."""
        p = self.state.petitions.get(pid)
        if escrow or (p is not None and p["Offering"]):
            await self.ledger("wAR", "Refund", Escrow=escrow or f"petition:{pid}", Reason=code, T=t)
        if p is None or p["Status"] != "judging":
            return
        await self.record({"Action": "Refunded", "Pid": pid, "Reason": code, "T": t})
        self.judging.discard(pid)
        self.told.pop(pid, None)
        self.bus.send(f"player:{p['Player']}", {"Action": "PetitionFailed", "PetitionId": pid, "Code": code,
                                                 "Message": message, "Refunded": p["Offering"]})
        self.say(self.king.line("failed", self.next_line(), player=p["Player"]) or
                 f"Forgive me, {p['Player']}: the Fed could not decide. Your offering is returned.", t)
        if self.inference:
            await self.pump(t)

    # --- questions about petitions and the policy ---------------------------------------------------------------

    def describe(self, pid: str) -> dict[str, Any]:
        p = self.state.petitions[pid]
        names = {m.id: m.name for m in (*self.committee, self.king)}
        out = {"PetitionId": pid, "Player": p["Player"], "Text": p["Text"], "T": p["T"], "Status": p["Status"],
               "Offering": p["Offering"],
               "Votes": [{"Member": m, "Name": names.get(m, m), "Grade": v[0], "ReceiptId": v[1]}
                         | ({"Expected": v[2]} if len(v) > 2 else {}) for m, v in p["Votes"].items()]}
        for key in (*VERDICT_FIELDS, "Reason", "Announcement"):
            if key in p:
                out[key] = p[key]
        return out

    def on_petitions(self, msg: Message) -> None:
        mine = [pid for pid in reversed(self.state.order) if self.state.petitions[pid]["Player"] == msg["Player"]]
        self.reply(msg, "Petitions-Done", Petitions=[self.describe(p) for p in mine[:50]])

    async def on_info(self, msg: Message) -> None:
        t, p = msg["T"], self.policy
        await self.commit_epochs(t)
        now = fairness.epoch_of(t, p.epoch_ms)
        ended = sorted((int(e) for e in self.state.epochs if int(e) < now), reverse=True)
        asked = msg.get("Epoch")
        self.reply(msg, "Info-Done", Offering=p.offering, MaxPayout=p.max_payout, HourlyCap=p.hourly_cap,
                   EmittedLastHour=policy.emitted_since(self.state.emissions, t), CooldownCount=p.cooldown_count,
                   CooldownMs=p.cooldown_ms, EpochMs=p.epoch_ms, Epoch=now, Moods=list(fairness.MOODS),
                   Commitment=self.state.epochs[str(now)]["Commitment"],
                   NextCommitment=self.state.epochs[str(now + 1)]["Commitment"],
                   Committee=[{"Id": m.id, "Name": m.name} for m in self.committee],
                   Revealed=[self.epoch_info(e, now) for e in ([asked] if asked is not None else ended[:REVEALED_SHOWN])])

    def epoch_info(self, epoch: int, now: int) -> dict[str, Any]:
        known = self.state.epochs.get(str(epoch))
        if known is None:
            return {"Epoch": epoch, "Commitment": None}
        out = {"Epoch": epoch, "Commitment": known["Commitment"]}
        if epoch < now:  # revealed only once the epoch is over
            out["Seed"] = known["Seed"]
        return out

    def on_quote(self, msg: Message) -> None:
        self.answer(msg, Npc=self.king.id, Fee=self.policy.offering, Token="wAR", ExpiresAt=None)

    async def on_tick(self, msg: Message) -> None:
        await self.commit_epochs(msg["T"])

    # --- speaking -------------------------------------------------------------------------------------------------

    def next_line(self) -> int:
        self.lines += 1
        return self.lines

    def say(self, text: str, t: int) -> None:
        self.bus.send(f"room:{self.king_room}", {"Action": "NpcSay", "Npc": self.king.id, "Text": text,
                                                 "Scope": "room", "T": t})

