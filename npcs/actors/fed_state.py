"""The Llama Fed's logged state: a pure reducer over its log (commitments, petitions, votes, verdicts, grants,
refunds, endowments), rebuilt by `llama-land replay` from the same entries."""

from __future__ import annotations

from typing import Any

from server.core.actors import Message
from server.core.state import ActorState

from npcs.actors import policy

VERDICT_FIELDS = ("Grade", "Uniqueness", "Similarity", "Mood", "Epoch", "Payout", "Formula", "Clamps", "Committee",
                  "Examples", "Blended", "Neighbours")


class FedState(ActorState):
    kind = "fed"

    def __init__(self) -> None:
        self.petitions: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.keys: dict[str, str] = {}  # "player|client key" -> petition id
        self.epochs: dict[str, dict[str, str]] = {}  # epoch number -> {"Seed", "Commitment"}
        self.emissions: list[list[int]] = []  # [t, amount] minted by verdicts in the last hour
        self.endowed: dict[str, int] = {}

    def on_Commit(self, msg: Message) -> None:
        self.epochs[str(msg["Epoch"])] = {"Seed": msg["Seed"], "Commitment": msg["Commitment"]}

    def on_Open(self, msg: Message) -> None:
        self.petitions[msg["Pid"]] = {"Player": msg["Player"], "Text": msg["Text"], "Offering": msg["Offering"],
                                      "T": msg["T"], "Status": "judging", "Votes": {}}
        self.order.append(msg["Pid"])
        if msg.get("Key"):
            self.keys[f"{msg['Player']}|{msg['Key']}"] = msg["Pid"]

    def on_Vote(self, msg: Message) -> None:
        vote = [msg["Grade"], msg["ReceiptId"]]
        if "Expected" in msg:  # a scored vote: the expected grade under the grade tokens' probabilities
            vote.append(msg["Expected"])
        self.petitions[msg["Pid"]]["Votes"][msg["Member"]] = vote

    def on_Verdict(self, msg: Message) -> None:
        p = self.petitions[msg["Pid"]]
        p.update({k: msg[k] for k in VERDICT_FIELDS if k in msg})
        p["Status"] = "judged"
        self.emissions = [e for e in self.emissions if e[0] > msg["T"] - policy.HOUR_MS]
        if msg["Payout"]:
            self.emissions.append([msg["T"], msg["Payout"]])

    def on_Granted(self, msg: Message) -> None:
        self.petitions[msg["Pid"]]["Status"] = "granted"

    def on_Refunded(self, msg: Message) -> None:
        self.petitions[msg["Pid"]].update(Status="refunded", Reason=msg["Reason"])

    def on_Announced(self, msg: Message) -> None:
        self.petitions[msg["Pid"]].update(Announcement=msg["Text"], AnnouncementReceipt=msg.get("ReceiptId"))

    def on_Endow(self, msg: Message) -> None:
        self.endowed[msg["To"]] = msg["Amount"]
