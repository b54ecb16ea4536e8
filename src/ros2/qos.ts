/**
 * QoS choices by name, one per topic (a parameter each). Cameras default to the sensor-data profile
 * (best effort, keep last 5): a RELIABLE subscription receives nothing from a best-effort camera
 * driver (ROS 2 QoS compatibility table, docs.ros.org "Quality of Service settings"). Publishers
 * default to reliable, which both reliable and best-effort subscribers accept.
 */
import { BitmarError } from '../errors.js';
import type { RclnodejsApi, RclQoSProfile } from './rclnodejs-api.js';

export const QOS_CHOICES = ['sensor_data', 'default', 'system_default', 'reliable', 'best_effort'] as const;
export type QosChoice = (typeof QOS_CHOICES)[number];

/** Narrows a parameter value to a QoS choice. Throws BITMAR_ERR_CONFIG_INVALID naming the choices. */
export function parseQosChoice(value: string, what: string): QosChoice {
  const found = QOS_CHOICES.find((c) => c === value);
  if (found === undefined) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `${what}: QoS '${value}' is not one of ${QOS_CHOICES.join(', ')}`);
  return found;
}

/**
 * The rclnodejs QoS for a choice: the named profiles as profile refs, `reliable`/`best_effort` as
 * keep-last `depth` (default 10 / 5), volatile.
 */
export function qosProfile(rcl: RclnodejsApi, choice: QosChoice, depth?: number): RclQoSProfile {
  const { QoS } = rcl;
  switch (choice) {
    case 'sensor_data':
      return QoS.profileSensorData;
    case 'default':
      return QoS.profileDefault;
    case 'system_default':
      return QoS.profileSystemDefault;
    case 'reliable':
      return new QoS(
        QoS.HistoryPolicy.RMW_QOS_POLICY_HISTORY_KEEP_LAST,
        depth ?? 10,
        QoS.ReliabilityPolicy.RMW_QOS_POLICY_RELIABILITY_RELIABLE,
        QoS.DurabilityPolicy.RMW_QOS_POLICY_DURABILITY_VOLATILE,
      );
    case 'best_effort':
      return new QoS(
        QoS.HistoryPolicy.RMW_QOS_POLICY_HISTORY_KEEP_LAST,
        depth ?? 5,
        QoS.ReliabilityPolicy.RMW_QOS_POLICY_RELIABILITY_BEST_EFFORT,
        QoS.DurabilityPolicy.RMW_QOS_POLICY_DURABILITY_VOLATILE,
      );
  }
}
