/** The `anomalies` plan. (Stub: to be defined with its route.) */
export interface AnomaliesPlan {
  kind: 'anomalies';
}
