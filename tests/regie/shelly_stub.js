// A Shelly Gen2+ script runtime for the tests: `node shelly_stub.js SCRIPT` runs SCRIPT with the globals a
// Shelly gives (Shelly.call, Timer, MQTT, print) and nothing else, as strictly as a device would refuse
// what it does not know, and prints what the script did as JSON lines on stdout.
//
//   Shelly.call("HTTP.GET", {url, timeout}, cb)   a real GET (node's http) to the URL: cb(result, 0, "")
//                                                 with {code, message, headers, body}, or cb(undefined,
//                                                 -114, message) when the request fails
//   Shelly.call("Switch.Set", {id: 0, on}, cb)    recorded: {"switch": {"id": 0, "on": true}}
//   any other method                              throws, as do unknown or mistyped parameters
//   Timer.set(ms, repeat, cb[, userdata])         recorded; fired SHELLY_TICKS times after the start
//   MQTT.subscribe(topic, cb[, userdata])         a real subscription on the broker SHELLY_MQTT
//                                                 (HOST:PORT, MQTT 3.1.1): cb(topic, payload, userdata)
//                                                 for the first SHELLY_MESSAGES messages (1)
//   print(...), console.log(...)                  {"print": "..."}
//
// Once the script has started, its calls have answered and its timers have fired SHELLY_TICKS times (0),
// and its subscriptions have delivered SHELLY_MESSAGES messages, the stub prints {"done": true} and exits
// 0; it exits 1 when the script throws, 2 on a call a Shelly would refuse, 3 after SHELLY_DEADLINE_MS
// (20000) still waiting.
"use strict";

const fs = require("fs");
const http = require("http");
const net = require("net");
const vm = require("vm");

const TICKS = Number(process.env.SHELLY_TICKS || "0");
const MESSAGES = Number(process.env.SHELLY_MESSAGES || "1");
const DEADLINE_MS = Number(process.env.SHELLY_DEADLINE_MS || "20000");

function emit(record) {
  process.stdout.write(JSON.stringify(record) + "\n");
}

function refuse(message) {
  process.stderr.write("shelly_stub: a Shelly would refuse this: " + message + "\n");
  process.exit(2);
}

function crashed(error) {
  process.stderr.write("shelly_stub: the script threw: " + (error && error.stack ? error.stack : error) + "\n");
  process.exit(1);
}

let pending = 0; // calls not yet answered, messages not yet delivered

function settled() {
  return new Promise((resolve) => {
    const check = () => (pending === 0 ? resolve() : setTimeout(check, 5));
    check();
  });
}

// Run a callback of the script, then count the call it answers as done.
function answer(callback, args) {
  try {
    if (callback !== undefined && callback !== null) {
      callback(...args);
    }
  } catch (error) {
    crashed(error);
  } finally {
    pending -= 1;
  }
}

function checkKeys(method, params, required, optional) {
  if (params === null || typeof params !== "object" || Array.isArray(params)) {
    refuse(method + " takes an object of parameters, not " + JSON.stringify(params));
  }
  for (const key of Object.keys(params)) {
    if (!(key in required) && !(key in optional)) {
      refuse(method + " has no parameter " + JSON.stringify(key));
    }
  }
  for (const [key, type] of Object.entries(required)) {
    if (typeof params[key] !== type) {
      refuse(method + " needs " + key + " as a " + type + ", not " + JSON.stringify(params[key]));
    }
  }
  for (const [key, type] of Object.entries(optional)) {
    if (key in params && typeof params[key] !== type) {
      refuse(method + " takes " + key + " as a " + type + ", not " + JSON.stringify(params[key]));
    }
  }
}

function checkCallback(what, callback) {
  if (callback !== undefined && callback !== null && typeof callback !== "function") {
    refuse(what + " takes a function as its callback, not " + typeof callback);
  }
}

const relays = { 0: false }; // a single-relay device, off

const methods = {
  "HTTP.GET": (params, done) => {
    checkKeys("HTTP.GET", params, { url: "string" }, { timeout: "number", ssl_ca: "string" });
    if (!params.url.startsWith("http://")) {
      refuse("this stub fetches http:// URLs only, not " + params.url);
    }
    const timeout = (params.timeout === undefined ? 15 : params.timeout) * 1000;
    const request = http.get(params.url, { timeout }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        emit({ get: params.url, code: response.statusCode, bytes: Buffer.byteLength(body) });
        done({ code: response.statusCode, message: response.statusMessage, headers: response.headers, body }, 0, "");
      });
    });
    request.on("timeout", () => request.destroy(new Error("Deadline exceeded")));
    request.on("error", (error) => {
      emit({ get: params.url, error: error.message });
      done(undefined, -114, "Unavailable: " + error.message);
    });
  },
  "Switch.Set": (params, done) => {
    checkKeys("Switch.Set", params, { id: "number", on: "boolean" }, { toggle_after: "number" });
    if (!(params.id in relays)) {
      refuse("Switch.Set on switch " + params.id + ": this device has switch 0 only");
    }
    const was_on = relays[params.id];
    relays[params.id] = params.on;
    emit({ switch: { id: params.id, on: params.on } });
    setImmediate(() => done({ was_on }, 0, ""));
  },
};

const Shelly = {
  call(method, params, callback, userdata) {
    if (!Object.prototype.hasOwnProperty.call(methods, method)) {
      refuse("Shelly.call of an unknown method " + JSON.stringify(method));
    }
    checkCallback("Shelly.call", callback);
    pending += 1;
    methods[method](params, (result, code, message) => answer(callback, [result, code, message, userdata]));
  },
};

const timers = [];

const Timer = {
  set(period, repeat, callback, userdata) {
    if (typeof period !== "number" || !(period > 0) || typeof repeat !== "boolean" || typeof callback !== "function") {
      refuse("Timer.set(period in ms, repeat true or false, callback): not " + [typeof period, typeof repeat, typeof callback]);
    }
    timers.push({ period, repeat, callback, userdata, live: true });
    emit({ timer: { period, repeat } });
    return timers.length;
  },
  clear(handle) {
    const timer = timers[handle - 1];
    if (timer === undefined) {
      return undefined;
    }
    const was = timer.live;
    timer.live = false;
    return was;
  },
};

// A subscriber of MQTT 3.1.1 at QoS 0, enough to read retained messages from a real broker.
function remainingLength(length) {
  const bytes = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) {
      byte |= 0x80;
    }
    bytes.push(byte);
  } while (length > 0);
  return Buffer.from(bytes);
}

function packet(type, body) {
  return Buffer.concat([Buffer.from([type]), remainingLength(body.length), body]);
}

function utf8(text) {
  const bytes = Buffer.from(text, "utf8");
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
}

function matches(filter, topic) {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") {
      return true;
    }
    if (i >= t.length || (f[i] !== "+" && f[i] !== t[i])) {
      return false;
    }
  }
  return f.length === t.length;
}

const subscriptions = [];
let broker = null;

function connect() {
  const [host, port] = (process.env.SHELLY_MQTT || "").split(":");
  const socket = net.connect(Number(port), host);
  let buffer = Buffer.alloc(0);
  let packetId = 0;
  const subscribe = (filter) => {
    packetId += 1;
    socket.write(packet(0x82, Buffer.concat([Buffer.from([packetId >> 8, packetId & 0xff]), utf8(filter), Buffer.from([0])])));
  };
  socket.on("connect", () => {
    const header = Buffer.concat([utf8("MQTT"), Buffer.from([4, 0x02, 0, 60])]); // level 4, clean session
    socket.write(packet(0x10, Buffer.concat([header, utf8("shelly-stub-" + process.pid)])));
  });
  socket.on("data", (data) => {
    buffer = Buffer.concat([buffer, data]);
    for (;;) {
      let length = 0;
      let multiplier = 1;
      let at = 1;
      for (; at < buffer.length; at++) {
        length += (buffer[at] & 0x7f) * multiplier;
        multiplier *= 128;
        if ((buffer[at] & 0x80) === 0) {
          break;
        }
      }
      if (at >= buffer.length || buffer.length < at + 1 + length) {
        return;
      }
      const type = buffer[0];
      const body = buffer.subarray(at + 1, at + 1 + length);
      buffer = buffer.subarray(at + 1 + length);
      if (type === 0x20) {
        if (body[1] !== 0) {
          refuse("the broker refused the connection: " + body[1]);
        }
        broker.connected = true;
        subscriptions.forEach((s) => subscribe(s.topic));
      } else if ((type & 0xf0) === 0x30) {
        const topicLength = (body[0] << 8) | body[1];
        const topic = body.subarray(2, 2 + topicLength).toString("utf8");
        const skip = ((type >> 1) & 3) > 0 ? 2 : 0; // a packet id at QoS 1 and 2
        const payload = body.subarray(2 + topicLength + skip).toString("utf8");
        emit({ message: { topic, payload, retained: (type & 1) === 1 } });
        for (const s of subscriptions) {
          if (s.awaited > 0 && matches(s.topic, topic)) {
            s.awaited -= 1;
            answer(s.callback, [topic, payload, s.userdata]);
          }
        }
      }
    }
  });
  socket.on("error", (error) => refuse("cannot reach the MQTT broker " + process.env.SHELLY_MQTT + ": " + error.message));
  return { socket, subscribe, connected: false };
}

const MQTT = {
  isConnected() {
    return broker !== null && broker.connected;
  },
  subscribe(topic, callback, userdata) {
    if (!process.env.SHELLY_MQTT) {
      refuse("MQTT.subscribe with MQTT disabled on the device (give the stub SHELLY_MQTT=HOST:PORT)");
    }
    if (typeof topic !== "string" || topic === "" || typeof callback !== "function") {
      refuse("MQTT.subscribe(topic, callback): not " + [typeof topic, typeof callback]);
    }
    if (subscriptions.length >= 10) {
      refuse("MQTT.subscribe: a script has at most 10 subscriptions");
    }
    subscriptions.push({ topic, callback, userdata, awaited: MESSAGES });
    pending += MESSAGES;
    emit({ subscribe: topic });
    if (broker === null) {
      broker = connect();
    } else if (broker.connected) {
      broker.subscribe(topic);
    }
  },
};

function print(...values) {
  emit({ print: values.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(" ") });
}

async function main() {
  const path = process.argv[2];
  if (!path) {
    process.stderr.write("usage: node shelly_stub.js SCRIPT\n");
    process.exit(2);
  }
  setTimeout(() => {
    process.stderr.write("shelly_stub: still waiting after " + DEADLINE_MS + " ms (" + pending + " pending)\n");
    process.exit(3);
  }, DEADLINE_MS).unref();
  const context = vm.createContext({ Shelly, Timer, MQTT, print, console: { log: print } });
  try {
    vm.runInContext(fs.readFileSync(path, "utf8"), context, { filename: path });
  } catch (error) {
    crashed(error);
  }
  await settled();
  for (let tick = 0; tick < TICKS; tick++) {
    for (const timer of timers.filter((t) => t.live)) {
      timer.live = timer.repeat;
      pending += 1;
      answer(timer.callback, [timer.userdata]);
      await settled();
    }
  }
  emit({ done: true });
  process.exit(0);
}

main();
