/* The régie's pages: draw each curve with uPlot from the page's own data, sign in with an EIP-1193 wallet
   (Sign-In with Ethereum), and grant or revoke consents with EIP-712 signatures. No inline script, no CDN. */
"use strict";

const SIDES = {
  consumption: { local: "AUTOCONS", grid: "COMPLEMENT", total: "CONS", colours: ["#2e7d32", "#8a5a00"],
                 names: ["from the loop (AUTOCONS)", "from the grid (COMPLEMENT)", "consumed (CONS)"] },
  production: { local: "AUTOPROD", grid: "SURPLUS", total: "PROD", colours: ["#1565c0", "#6a4c93"],
                names: ["sold in the loop (AUTOPROD)", "exported (SURPLUS)", "produced (PROD)"] },
};

const regie = { charts: {}, data: null };
window.regie = regie;

function kwh(wh) {
  return wh == null ? null : wh / 1000;
}

function shown(u, value) {
  return value == null ? "–" : value.toLocaleString("en", { maximumFractionDigits: 3 }) + " kWh";
}

/* [x, total, local, grid] in kWh: the total drawn first, the local part over it, so that the grid's part
   shows above the local one. A point holds from its start to the next one's: the last is repeated at the
   period's end, so that it shows too. */
function seriesOf(curve, side, end) {
  const names = SIDES[side];
  const x = curve.horodate.map((horodate) => Date.parse(horodate) / 1000);
  const series = [names.total, names.local, names.grid].map((q) => (curve[q] || curve.horodate.map(() => null)).map(kwh));
  x.push(end);
  series.forEach((values) => values.push(values.length ? values[values.length - 1] : null));
  return [x, ...series];
}

function draw(element) {
  const curve = regie.data[element.dataset.curve];
  const side = element.dataset.side;
  const names = SIDES[side];
  const zone = (regie.data.loop && regie.data.loop.zone) || "UTC";
  const [local, grid] = names.colours;
  const view = regie.data.view;
  const [start, end] = [Date.parse(view.start) / 1000, Date.parse(view.end) / 1000];
  const coarse = ["day", "month", "year"].includes(curve.granularity);  // bars: a day is a block, not a line
  const paths = coarse ? uPlot.paths.bars({ size: [0.9, Infinity], align: 1 }) : uPlot.paths.stepped({ align: 1 });
  const options = {
    width: Math.max(element.clientWidth, 280),
    height: 300,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), zone),
    scales: { x: { time: true, range: [start, end] }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.05 : 1] } },
    series: [
      {},
      { label: names.names[2], stroke: grid, fill: coarse ? grid + "88" : undefined, width: 1.5, value: shown, paths },
      { label: names.names[0], stroke: local, fill: local + "99", width: 1.5, value: shown, paths },
      { label: names.names[1], stroke: grid, paths: () => null, points: { show: false }, value: shown },
    ],
    bands: coarse ? [] : [{ series: [1, 2], fill: grid + "66" }],
    axes: [{}, { label: "kWh", size: 60 }],
  };
  const chart = new uPlot(options, seriesOf(curve, side, end), element);
  regie.charts[element.id] = chart;
  new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 280), height: 300 })).observe(element);
}

async function send(method, path, body) {
  const answer = await fetch(path, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const found = await answer.json();
  if (!answer.ok) {
    throw new Error(found.error || `the régie answered ${answer.status}`);
  }
  return found;
}

function hex(text) {
  return "0x" + Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function signIn(status) {
  if (!window.ethereum) {
    status.textContent = "No wallet in this browser: install one (MetaMask, Rabby, Frame…) and reload this page.";
    return;
  }
  try {
    status.textContent = "Asking your wallet for your account…";
    const [address] = await window.ethereum.request({ method: "eth_requestAccounts" });
    const { message } = await send("POST", "/api/sign-in/message", { address });
    status.textContent = "Sign the message in your wallet…";
    const signature = await window.ethereum.request({ method: "personal_sign", params: [hex(message), address] });
    await send("POST", "/api/sign-in", { message, signature });
    window.location.reload();
  } catch (error) {
    status.textContent = `Not signed in: ${error.message}`;
  }
}

async function signOut() {
  await send("POST", "/api/sign-out", {});
  window.location.reload();
}

async function signTyped(typed) {
  const [address] = await window.ethereum.request({ method: "eth_requestAccounts" });
  return window.ethereum.request({ method: "eth_signTypedData_v4", params: [address, JSON.stringify(typed)] });
}

/* Wait until the régie has indexed the consent `id` with a status `wanted` accepts, then reload. */
async function whenIndexed(id, wanted, status) {
  for (let tries = 0; tries < 120; tries += 1) {
    const { granted } = await (await fetch("/api/consents", { credentials: "same-origin" })).json();
    const found = (granted || []).find((c) => c.consent_id === id);
    if (found && wanted(found.status)) {
      window.location.reload();
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  status.textContent = `Recorded on chain as ${id}; the régie has not indexed it yet: reload later.`;
}

async function grant(form, status) {
  if (!window.ethereum) {
    status.textContent = "No wallet in this browser: a consent is signed by your payout account's wallet.";
    return;
  }
  const fields = Object.fromEntries(new FormData(form));
  fields.kinds = Array.from(form.querySelectorAll("input[name=kinds]:checked"), (box) => box.value);
  fields.history_days = Number(fields.history_days || 0);
  try {
    status.textContent = "Preparing the consent…";
    const typed = await send("POST", "/api/consents/draft", fields);
    status.textContent = "Sign the consent in your wallet…";
    const signature = await signTyped(typed);
    status.textContent = "Recording it on chain…";
    const { consent_id } = await send("POST", "/api/consents", { message: typed.message, signature });
    status.textContent = `Consent ${consent_id} recorded; waiting for the régie to index it…`;
    await whenIndexed(consent_id, () => true, status);
  } catch (error) {
    status.textContent = `Not granted: ${error.message}`;
  }
}

async function revoke(button, status) {
  const id = button.dataset.consent;
  try {
    status.textContent = "Sign the revocation in your wallet…";
    const answer = await fetch(`/api/consents/${id}/revocation`, { credentials: "same-origin" });
    const typed = await answer.json();
    if (!answer.ok) {
      throw new Error(typed.error || `the régie answered ${answer.status}`);
    }
    const signature = await signTyped(typed);
    await send("POST", `/api/consents/${id}/revocation`, { signature });
    status.textContent = `Consent ${id} revoked: it no longer serves anything.`;
    await whenIndexed(id, (found) => found === "revoked", status);
  } catch (error) {
    status.textContent = `Not revoked: ${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  regie.data = JSON.parse(document.getElementById("page-data").textContent);
  document.querySelectorAll(".chart").forEach(draw);
  const signInButton = document.getElementById("sign-in");
  if (signInButton) {
    signInButton.addEventListener("click", () => signIn(document.getElementById("sign-in-status")));
  }
  const signOutButton = document.getElementById("sign-out");
  if (signOutButton) {
    signOutButton.addEventListener("click", signOut);
  }
  const status = document.getElementById("consent-status");
  const form = document.getElementById("grant-form");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      grant(form, status);
    });
  }
  document.querySelectorAll("button.revoke").forEach((button) => button.addEventListener("click", () => revoke(button, status)));
});
