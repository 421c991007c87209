// podlab/ghost-standin's server: answers on Ghost's port 2368 and says plainly that it is a stand-in for Ghost.
'use strict';

const http = require('node:http');

const host = '0.0.0.0';
const port = 2368;
const body = `ghost stand-in: not Ghost, a small Node.js server in its place (node ${process.version})\n`;

const server = http.createServer((request, response) => {
  response.writeHead(200, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
});

server.listen(port, host, () => {
  console.log(`ghost stand-in listening on ${host}:${port} (node ${process.version})`);
});

// As PID 1 of its container, node gets no default action for SIGTERM or SIGINT: without these handlers
// `docker stop` would wait for its timeout and then SIGKILL.
function shutDown(signal) {
  console.log(`ghost stand-in: got ${signal}, shutting down`);
  // close() waits for open connections; keep-alive ones would hold it open, so end them now.
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', shutDown);
process.on('SIGINT', shutDown);
