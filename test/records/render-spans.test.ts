// A read renders a record from the member spans stored with its version (records/render.ts spansOf) instead of
// scanning the document; spans that do not fit the text are not trusted.
import { describe, expect, it } from 'vitest';
import { topLevelMembers } from '../../src/fhir/json-text.js';
import { renderRecord, spansOf, storedSpans } from '../../src/records/render.js';
import { createGenerator } from '../../fixtures/generator.js';

const g = createGenerator(77);
const version = { recordId: 'r-1', version: 3, receivedAt: new Date('2026-01-02T03:04:05Z') };

describe('stored member spans', () => {
  const text = JSON.stringify(g.records(g.patient(), 1)[0].bundle, null, 2).replace('{', '{"meta": {"tag": []},');
  const spans = storedSpans(topLevelMembers(text));

  it('render exactly as a scan does', () => {
    expect(spans.keys).toContain('entry');
    expect(renderRecord(text, { ...version, members: spans })).toBe(renderRecord(text, version));
    const rendered = JSON.parse(renderRecord(text, { ...version, members: spans }));
    expect(rendered.id).toBe('r-1');
    expect(rendered.meta).toEqual({ versionId: '3', lastUpdated: '2026-01-02T03:04:05.000Z', tag: [] });
  });

  it('are not trusted when they do not fit the text: the text is scanned', () => {
    const shifted = { keys: spans.keys, at: spans.at.map((x) => x + 1) };
    expect(spansOf(text, shifted)).toEqual(topLevelMembers(text));
    const beyond = { keys: spans.keys, at: spans.at.map((x, i) => (i % 2 ? text.length + 5 : x)) };
    expect(spansOf(text, beyond)).toEqual(topLevelMembers(text));
    expect(spansOf(text, { keys: [], at: [] })).toEqual(topLevelMembers(text));
    expect(spansOf(text, { keys: spans.keys, at: spans.at.slice(1) })).toEqual(topLevelMembers(text));
    expect(renderRecord(text, { ...version, members: shifted })).toBe(renderRecord(text, version));
  });
});
