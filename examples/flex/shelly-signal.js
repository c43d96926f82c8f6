// daisee: switch a Shelly's relay on the loop's flexibility signal.
//
// For a Shelly Gen2, Gen3 or Gen4 device (Plus, Pro, Mini): in its web page, Scripts, Add script, paste
// this file, replace REGIE_HOST below, Save, Start (and "Run on startup"). See examples/flex/README.md.
//
// Every five minutes the script reads the score of the step under way from the régie (0 = no sun in the
// loop, 10 = sun to spare), switches the relay on at 7 or more and off below 5; between the two it leaves
// the relay as it is, so a passing cloud does not flick it on and off. It switches only when its decision
// changes: a relay turned on or off by hand stays so until the score next crosses a threshold. When the
// régie cannot be reached it leaves the relay as it is.
//
// It asks /api/signal/now, the step under way alone (a few hundred bytes: /api/signal carries 36 hours of
// steps, some 25 kB for a loop of quarter-hours). To keep the régie on loopback, read the score from the
// MQTT broker the régie publishes to instead: connect the Shelly to that broker (Settings, MQTT) and set
// mqtt_topic below to "daisee/<LOOP>/signal/score" (<LOOP>: "loop" in the régie's /api/signal/now).

let CONFIG = {
  url: "http://REGIE_HOST:8547/api/signal/now", // the step under way: replace REGIE_HOST (see the README)
  mqtt_topic: null, // or "daisee/<LOOP>/signal/score" to read the score from MQTT instead of polling
  on_at: 7, // switch on at this score or more
  off_below: 5, // switch off below this score
  switch_id: 0, // the relay (0 on a single-relay device)
  every_ms: 300000, // how often to ask the régie: five minutes
  timeout_s: 20 // how long to wait for its answer
};

let switched = null; // what the script last set the relay to (null before its first decision)

// The score of the step under way in the signal's JSON text, or null. It parses only the "now" object,
// not the 36 hours of steps, to stay within a Shelly's memory.
function scoreIn(body) {
  let at = body.indexOf('"now":');
  if (at < 0) {
    return null;
  }
  let from = at + 6;
  while (body.slice(from, from + 1) === " ") {
    from = from + 1;
  }
  if (body.slice(from, from + 1) !== "{") {
    return null; // "now": null, the signal does not cover the present
  }
  let to = body.indexOf("}", from);
  if (to < 0) {
    return null;
  }
  let now = null;
  try {
    now = JSON.parse(body.slice(from, to + 1));
  } catch (e) {
    return null;
  }
  if (typeof now.score !== "number") {
    return null;
  }
  return now.score;
}

function decide(score) {
  if (score >= CONFIG.on_at) {
    return true;
  }
  if (score < CONFIG.off_below) {
    return false;
  }
  return switched; // in between: as it is
}

function apply(score) {
  let wanted = decide(score);
  if (wanted === null || wanted === switched) {
    print("daisee: score " + JSON.stringify(score) + ", relay left as it is");
    return;
  }
  switched = wanted;
  Shelly.call("Switch.Set", { id: CONFIG.switch_id, on: wanted });
  print("daisee: score " + JSON.stringify(score) + ", relay " + (wanted ? "on" : "off"));
}

function onSignal(result, error_code, error_message) {
  if (error_code !== 0) {
    print("daisee: cannot read the régie's signal: " + JSON.stringify(error_code) + " " + error_message);
    return;
  }
  if (result.code !== 200) {
    print("daisee: the régie answered " + JSON.stringify(result.code) + " " + result.message);
    return;
  }
  let score = scoreIn(result.body);
  if (score === null) {
    print("daisee: the signal has no score for the present");
    return;
  }
  apply(score);
}

function poll() {
  Shelly.call("HTTP.GET", { url: CONFIG.url, timeout: CONFIG.timeout_s }, onSignal);
}

function onScore(topic, message) {
  let score = null;
  try {
    score = JSON.parse(message); // a bare integer: "7"
  } catch (e) {
    score = null;
  }
  if (typeof score !== "number") {
    print("daisee: " + topic + " holds no score: " + message);
    return;
  }
  apply(score);
}

if (CONFIG.mqtt_topic !== null) {
  MQTT.subscribe(CONFIG.mqtt_topic, onScore); // retained: the current score arrives at once
} else {
  poll();
  Timer.set(CONFIG.every_ms, true, poll);
}
