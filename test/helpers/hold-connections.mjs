// Opens `count` raw TCP connections to host:port (at most `inFlight` connecting at once), sends
// nothing, and holds every socket it has until killed. Prints one JSON line when all connected:
// {"connected": n, "failed": n, "closedByServer": n}. Needs `count` file descriptors.
import { connect } from 'node:net';

const [host, portText, countText, inFlightText = '256'] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const inFlight = Number(inFlightText);
const held = [];
let started = 0;
let connected = 0;
let failed = 0;
let closedByServer = 0;

function next() {
  if (started >= count) return;
  started++;
  // Half-open allowed: a socket the server closes stays held on this side, as a hostile client would.
  const socket = connect({ host, port, allowHalfOpen: true });
  held.push(socket);
  let settled = false;
  const settle = (ok) => {
    if (settled) return;
    settled = true;
    if (ok) connected++;
    else failed++;
    if (connected + failed === count) console.log(JSON.stringify({ connected, failed, closedByServer }));
    else next();
  };
  socket.once('connect', () => settle(true));
  socket.once('error', () => settle(false));
  // The server's end (an eviction) is counted; the socket is still held open on this side.
  socket.once('end', () => closedByServer++);
}

for (let i = 0; i < Math.min(inFlight, count); i++) next();
setInterval(() => undefined, 1 << 30);
