import type { ServerResponse } from 'node:http';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  contentType = 'application/dicom+json',
): void {
  sendJsonText(res, status, JSON.stringify(body), contentType);
}

/** A body already serialised as JSON text. */
export function sendJsonText(
  res: ServerResponse,
  status: number,
  text: string,
  contentType = 'application/dicom+json',
): void {
  // Encoded once: the length and the bytes sent come from the same buffer (Buffer.byteLength and then end(text)
  // would walk a long string with non-Latin-1 names twice).
  const bytes = Buffer.from(text, 'utf8');
  res.writeHead(status, {
    'Content-Type': `${contentType}; charset=utf-8`,
    'Content-Length': bytes.length,
  });
  res.end(bytes);
}

/** Write an async byte stream to the response with back-pressure; a mid-stream failure aborts the connection. */
export async function pipeBody(res: ServerResponse, body: AsyncIterable<Buffer>): Promise<void> {
  try {
    for await (const chunk of body) {
      if (!res.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = () => {
            res.off('close', onClose);
            resolve();
          };
          const onClose = () => {
            res.off('drain', onDrain);
            reject(new Error('client closed the connection'));
          };
          res.once('drain', onDrain);
          res.once('close', onClose);
        });
      }
    }
    res.end();
  } catch (err) {
    // Headers are gone: the only honest signal left is to cut the connection so the client sees a broken body.
    res.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}
