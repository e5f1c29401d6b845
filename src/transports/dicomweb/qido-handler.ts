import { parseQidoQuery, type QidoLevel } from '../../domain/qido-query.js';
import type { QueryService } from '../../services/query-service.js';
import type { RequestContext } from '../server/router.js';
import { acceptJson, DICOM_XML_MULTIPART } from './negotiation.js';
import { jsonArray, sendDicomXml, sendJsonBytes, warning299 } from './responses.js';

/** QIDO-RS (PS3.18 §10.6) at study, series and instance level, optionally scoped by the URL. */
export function qidoHandler(query: QueryService, level: QidoLevel) {
  return async (ctx: RequestContext): Promise<void> => {
    const media = acceptJson(ctx.req.headers.accept, 'QIDO-RS results');
    const q = parseQidoQuery(ctx.query, level, {
      ...(ctx.params.study ? { studyUid: ctx.params.study } : {}),
      ...(ctx.params.series ? { seriesUid: ctx.params.series } : {}),
    });
    const base = `${ctx.origin}/dicom-web`;
    if (media === DICOM_XML_MULTIPART) {
      // The matches as objects, for the XML writer: not as JSON text, parsed back.
      const { results, warnings } = await query.search(ctx.principal, q, base);
      if (warnings.length)
        ctx.res.setHeader(
          'Warning',
          warnings.map((w) => warning299(base, w)),
        );
      await sendDicomXml(ctx.res, results);
      return;
    }
    const { rows, warnings } = await query.searchJsonRows(ctx.principal, q, base);
    if (warnings.length)
      ctx.res.setHeader(
        'Warning',
        warnings.map((w) => warning299(base, w)),
      );
    await sendJsonBytes(ctx.res, 200, jsonArray(rows), media);
  };
}
