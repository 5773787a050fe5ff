import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadOrder, ModuleNotFoundError, moduleName, parseModulesBuiltin, parseModulesDep } from './kmod.js';

// Shape of Debian 6.1's modules.dep for the boot modules (deps listed last-loads-first).
const DEP = `kernel/fs/overlayfs/overlay.ko:
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/9p/9pnet.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/net/ipv4/ip-tunnel.ko.xz:
`;

test('load order: dependencies before dependents, each file once, built-ins skipped', () => {
  const dep = parseModulesDep(DEP);
  const order = loadOrder(dep, new Set(['crc32c']), ['virtio_pci', '9pnet_virtio', '9p', 'overlay', 'crc32c']);
  const names = order.map(moduleName);
  assert.equal(new Set(names).size, names.length, 'no duplicates');
  const before = (a: string, b: string) => assert.ok(names.indexOf(a) < names.indexOf(b), `${a} before ${b}: ${names}`);
  before('virtio_ring', 'virtio');
  before('virtio', 'virtio_pci');
  before('virtio_pci_modern_dev', 'virtio_pci');
  before('9pnet', '9pnet_virtio');
  before('netfs', 'fscache');
  before('fscache', '9p');
  assert.ok(!names.includes('crc32c'));
  assert.equal(names.at(-1), 'overlay');
});

test('module names: compressed suffixes and - vs _ are one name', () => {
  assert.equal(moduleName('kernel/net/ipv4/ip-tunnel.ko.xz'), 'ip_tunnel');
  assert.equal(moduleName('9pnet_virtio'), '9pnet_virtio');
  assert.ok(parseModulesDep(DEP).files.has('ip_tunnel'));
  assert.deepEqual([...parseModulesBuiltin('kernel/lib/crc32c.ko\n\nkernel/fs/ext4/ext4.ko\n')], ['crc32c', 'ext4']);
});

test('a module that is neither a file nor built in: ModuleNotFoundError naming it', () => {
  assert.throws(
    () => loadOrder(parseModulesDep(DEP), new Set(), ['virtio_net']),
    (e: unknown) => e instanceof ModuleNotFoundError && e.module === 'virtio_net',
  );
});
