/**
 * Parameters: declared from descriptors on the double (whose validation is rclnodejs's own
 * ParameterDescriptor/Range classes), overrides from a params file, run-time changes through the
 * set-parameters callback (accepted, out of range, not allowed, read-only, wrong type, refused by
 * the node), and config/bitmar.ros2.yaml validated against the declared parameters.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parameterDescriptors } from '../../src/config/schema.js';
import { asRclnodejsApi } from '../../src/ros2/rclnodejs-api.js';
import {
  ROS2_TRANSPORT_PARAMETERS,
  checkParameterValue,
  declareParameters,
  validateParamsYaml,
  withValues,
  type ParameterChange,
  type Ros2ParameterDescriptor,
} from '../../src/ros2/parameters.js';
import { FakeRclnodejsForTests, type FakeNode, RCLNODEJS_JS_MISSING } from './fake-rclnodejs-for-tests.js';

const DESCRIPTORS: Ros2ParameterDescriptor[] = [
  { name: 'pipeline.batchSize', type: 'integer', description: 'frames per batch', min: 1, max: 64, runtime: true, value: 4 },
  { name: 'generation.temperature', type: 'double', description: '0 = greedy', min: 0, max: 5, runtime: true, value: 0 },
  { name: 'memory.policy', type: 'string', description: 'eviction', allowed: ['lru', 'fifo', 'similarity-merge'], runtime: true, value: 'similarity-merge' },
  { name: 'memory.enabled', type: 'bool', description: 'memory on', value: true },
  { name: 'model.threads', type: 'integer', description: 'threads', min: 1, max: 64, value: 1 },
  { name: 'generation.seed', type: 'integer', description: 'seed', min: 0, value: 0, runtime: true },
];

function setup(overrides: Record<string, boolean | bigint | number | string> = {}) {
  const fake = new FakeRclnodejsForTests({ parameterOverrides: overrides });
  const rcl = asRclnodejsApi(fake);
  const node = new fake.Node('bitmar_node');
  const changes: ParameterChange[][] = [];
  let refuse: string | undefined;
  const declared = declareParameters({ rcl, node }, DESCRIPTORS, (c) => {
    changes.push([...c]);
    return refuse;
  });
  return { fake, node, rcl, declared, changes, refuseWith: (r: string | undefined) => (refuse = r) };
}

function set(node: FakeNode, rcl: ReturnType<typeof asRclnodejsApi>, name: string, type: 'integer' | 'double' | 'string' | 'bool', value: unknown) {
  const t = rcl.ParameterType;
  const code = { integer: t.PARAMETER_INTEGER, double: t.PARAMETER_DOUBLE, string: t.PARAMETER_STRING, bool: t.PARAMETER_BOOL }[type];
  return node.setParameter(new rcl.Parameter(name, code, value));
}

describe('ros2/parameters: declareParameters', () => {
  before(function () {
    if (RCLNODEJS_JS_MISSING) {
      console.log(`    skipped: ${RCLNODEJS_JS_MISSING}`);
      this.skip();
    }
  });
  it('declares each parameter with type, description, range and read-only flag', () => {
    const { node, declared } = setup();
    assert.equal(node.parameters.size, DESCRIPTORS.length);
    assert.equal(node.getParameter('pipeline.batchSize').value, 4n, 'integers are bigint in rclnodejs');
    const batch = node.descriptors.get('pipeline.batchSize')! as unknown as { readOnly: boolean; description: string; range: { fromValue: bigint; toValue: bigint } };
    assert.equal(batch.readOnly, false);
    assert.equal(batch.description, 'frames per batch');
    assert.deepEqual([batch.range.fromValue, batch.range.toValue], [1n, 64n]);
    assert.equal(node.descriptors.get('model.threads')!.readOnly, true, 'not run-time safe → read-only');
    const temp = node.descriptors.get('generation.temperature')! as unknown as { range: { step: number; inRange(v: number): boolean } };
    assert.equal(temp.range.step, 0, 'continuous range (rclnodejs defaults to step 1)');
    assert.ok(temp.range.inRange(0.7));
    assert.equal(node.descriptors.get('memory.policy')!.additionalConstraints, 'one of: lru, fifo, similarity-merge');
    assert.equal(declared.values.get('pipeline.batchSize'), 4, 'values come back as numbers');
    assert.deepEqual(declared.overridden, []);
  });

  it('takes params-file overrides at declaration and reports them, without calling onChange', () => {
    const { declared, changes } = setup({ 'pipeline.batchSize': 2n, 'generation.temperature': 0.5, 'model.threads': 2n });
    assert.deepEqual(declared.overridden, [
      { name: 'pipeline.batchSize', value: 2 },
      { name: 'generation.temperature', value: 0.5 },
      { name: 'model.threads', value: 2 },
    ]);
    assert.deepEqual(changes, []);
  });

  it('refuses bad overrides all together with one CONFIG_INVALID error', () => {
    assert.throws(
      () => setup({ 'pipeline.batchSize': 100n, 'memory.policy': 'random', 'generation.temperature': 1n }),
      (e: Error & { code?: string }) =>
        e.code === 'BITMAR_ERR_CONFIG_INVALID' && /pipeline\.batchSize/.test(e.message) && /memory\.policy/.test(e.message) && /generation\.temperature/.test(e.message),
    );
  });

  it('applies safe run-time changes and hands them to the node', () => {
    const { node, rcl, changes } = setup();
    assert.deepEqual(set(node, rcl, 'pipeline.batchSize', 'integer', 8n), { successful: true, reason: '' });
    assert.deepEqual(set(node, rcl, 'generation.temperature', 'double', 0.7), { successful: true, reason: '' });
    assert.deepEqual(set(node, rcl, 'memory.policy', 'string', 'lru'), { successful: true, reason: '' });
    assert.deepEqual(changes, [[{ name: 'pipeline.batchSize', value: 8 }], [{ name: 'generation.temperature', value: 0.7 }], [{ name: 'memory.policy', value: 'lru' }]]);
    assert.equal(node.getParameter('pipeline.batchSize').value, 8n);
  });

  it('rejects out-of-range, not-allowed, read-only and wrong-type values, and keeps the old value', () => {
    const { node, rcl, changes } = setup();
    const rejected = (r: { successful: boolean; reason: string }, pattern: RegExp): void => {
      assert.equal(r.successful, false);
      assert.match(r.reason, pattern);
    };
    rejected(set(node, rcl, 'pipeline.batchSize', 'integer', 65n), /batchSize/);
    rejected(set(node, rcl, 'pipeline.batchSize', 'integer', 0n), /batchSize/);
    rejected(set(node, rcl, 'generation.temperature', 'double', 5.5), /temperature/);
    rejected(set(node, rcl, 'generation.temperature', 'integer', 1n), /temperature/);
    rejected(set(node, rcl, 'memory.policy', 'string', 'random'), /not one of lru, fifo, similarity-merge/);
    rejected(set(node, rcl, 'model.threads', 'integer', 2n), /read-?only/);
    rejected(set(node, rcl, 'generation.seed', 'integer', -1n), /out of range|seed/);
    assert.deepEqual(changes, []);
    assert.equal(node.getParameter('pipeline.batchSize').value, 4n);
  });

  it('our callback alone catches a range violation (belt and braces over rclnodejs)', () => {
    // Declared without a range in rclnodejs terms (none given to the descriptor): our check still holds.
    const fake = new FakeRclnodejsForTests();
    const rcl = asRclnodejsApi(fake);
    const node = new fake.Node('n');
    declareParameters({ rcl, node }, [{ name: 'x', type: 'string', description: 'x', allowed: ['a', 'b'], runtime: true, value: 'a' }], () => undefined);
    assert.equal(set(node, rcl, 'x', 'string', 'c').successful, false);
  });

  it('passes the node’s refusal back to `ros2 param set`', () => {
    const { node, rcl, refuseWith } = setup();
    refuseWith('batch size cannot change while a batch is open');
    assert.deepEqual(set(node, rcl, 'pipeline.batchSize', 'integer', 2n), { successful: false, reason: 'batch size cannot change while a batch is open' });
    assert.equal(node.getParameter('pipeline.batchSize').value, 4n);
  });

  it('never declares secrets such as mqtt.password', () => {
    const fake = new FakeRclnodejsForTests();
    const rcl = asRclnodejsApi(fake);
    const node = new fake.Node('n');
    const secret = { name: 'mqtt.password', type: 'string' as const, description: 'password', value: 'hunter2' };
    const declared = declareParameters({ rcl, node }, [secret, { ...secret, name: 'mqtt.username', value: 'bot' }], () => undefined);
    assert.deepEqual([...declared.values.keys()], ['mqtt.username']);
    assert.equal(node.hasParameter('mqtt.password'), false);
  });

  it('builds descriptors with values from a nested config', () => {
    const specs = [
      { name: 'pipeline.batchSize', type: 'integer' as const, description: '' },
      { name: 'missing.key', type: 'string' as const, description: '' },
    ];
    assert.deepEqual(withValues(specs, { pipeline: { batchSize: 3 } }), [{ ...specs[0], value: 3 }]);
  });
});

describe('ros2/parameters: params files', () => {
  const specs = [...parameterDescriptors(), ...ROS2_TRANSPORT_PARAMETERS];

  it('config/bitmar.ros2.yaml only sets declared parameters, with valid types and values', () => {
    const text = readFileSync(new URL('../../config/bitmar.ros2.yaml', import.meta.url), 'utf8');
    assert.deepEqual(validateParamsYaml(text, specs), []);
  });

  it('catches unknown names, integers for doubles, ranges, enums and structure', () => {
    const bad = ['/**:', '  ros__parameters:', '    pipeline:', '      batchSize: 100', '      minIntervalMs: 5', '      nope: 1', '    memory:', '      policy: random', 'other_node:', '  foo: 1'].join('\n');
    const problems = validateParamsYaml(bad, specs);
    assert.equal(problems.length, 5, problems.join('\n'));
    assert.ok(problems.some((p) => /batchSize: 100 is out of range/.test(p)));
    assert.ok(problems.some((p) => /minIntervalMs must be a double \(write 2\.0, not 2\)/.test(p)));
    assert.ok(problems.some((p) => /pipeline\.nope is not a declared parameter/.test(p)));
    assert.ok(problems.some((p) => /'random' is not one of/.test(p)));
    assert.ok(problems.some((p) => /other_node: needs a ros__parameters/.test(p)));
  });

  it('every parameter of the schema and the transport has a valid default', () => {
    for (const d of ROS2_TRANSPORT_PARAMETERS) assert.equal(checkParameterValue(d, d.value), undefined, d.name);
    const names = specs.map((s) => s.name);
    assert.equal(new Set(names).size, names.length, 'no name declared twice');
  });
});
