import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A reverse proxy in front of a server under test, as nginx or HAProxy stands before Custos. */
export interface ReverseProxy {
  url: string;
  /** What the proxy answers while the server behind it does not: 502 (nginx's Bad Gateway) unless set. */
  gatewayStatus: 502 | 503 | 504;
  /** How many requests the proxy answered itself with gatewayStatus (the server behind did not answer). */
  gatewayAnswers: number;
  stop(): Promise<void>;
}

/**
 * Forwards every request, as it came (Host included), to 127.0.0.1:`port`, and streams the answer back. When the
 * server behind refuses the connection (stopped, restarting) it answers gatewayStatus with an HTML page, as nginx
 * does (`502 Bad Gateway`, text/html) and HAProxy (`503 Service Unavailable`, no server available).
 */
export async function startReverseProxy(port: number): Promise<ReverseProxy> {
  const server = createServer((req, res) => {
    const upstream = request(
      { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      proxy.gatewayAnswers++;
      const reason = { 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' }[
        proxy.gatewayStatus
      ];
      const body = `<html>\r\n<head><title>${proxy.gatewayStatus} ${reason}</title></head>\r\n<body>\r\n<center><h1>${proxy.gatewayStatus} ${reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
      res.writeHead(proxy.gatewayStatus, {
        'Content-Type': 'text/html',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: ReverseProxy = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    gatewayStatus: 502,
    gatewayAnswers: 0,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
  return proxy;
}
