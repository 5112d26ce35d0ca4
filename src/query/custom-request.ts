/** The `custom` plan. (Stub: to be defined with its route.) */
export interface CustomPlan {
  kind: 'custom';
}
